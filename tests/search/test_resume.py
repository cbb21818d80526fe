"""``--resume`` after the driver was SIGKILLed right after a trial's final result (the shared
search of conftest.py): the requested trials all end, and no finished trial is trained again."""
import json

import pandas as pd

from tests.search.conftest import NUM_SAMPLES


def _rows(lines):
    return [json.loads(x) for x in lines if x.strip()]


def test_resume_after_kill_completes_the_requested_trials(killed_search):
    frame = pd.read_parquet(killed_search.exp / "trials.parquet")
    assert len(frame) == NUM_SAMPLES
    assert set(frame["status"]) <= {"finished", "stopped"}, frame[["trial_id", "status"]]  # none interrupted or errored
    assert "continue with" not in killed_search.resume.stdout


def test_a_trial_finished_before_the_kill_is_never_trained_again(killed_search):
    assert killed_search.final_at_kill  # the driver died with at least one final result on disk
    for folder, before in killed_search.final_at_kill.items():
        after = (killed_search.exp / folder / "result.json").read_text().splitlines()
        assert after[:len(before)] == before  # nothing rewritten
        old, new = _rows(before), _rows(after[len(before):])
        trained = [r for r in old + new if not r.get("replayed")]
        epochs = [r["epoch"] for r in trained if r["final"] is False]
        assert len(epochs) == len(set(epochs)), f"{folder}: epochs trained again: {epochs}"
        finals = [r for r in trained if r["final"] is True]
        assert len(finals) == 1, f"{folder}: {len(finals)} trained final results"
        # what the resumed run reported for it is that same final result, replayed from its checkpoint
        for row in new:
            assert row["final"] is True and row["replayed"] is True
            for key in ("val_loss", "score", "lift_vs_sticky", "train_seconds", "epoch"):
                assert row[key] == finals[0][key], key


def test_the_replayed_trial_keeps_a_checkpoint_to_export(killed_search):
    frame = pd.read_parquet(killed_search.exp / "trials.parquet").set_index("trial_id")
    for folder in killed_search.final_at_kill:
        trial_id = next(t for t in frame.index if f"_{t}_" in folder)
        checkpoint = frame.loc[trial_id, "checkpoint"]
        assert isinstance(checkpoint, str) and (killed_search.exp / folder).name in checkpoint
