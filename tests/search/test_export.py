"""search.export: bad experiment folders and outputs are one ``error:`` line (exit 2, nothing
written), a second export into the same folder never leaves a file of the first behind, and an
export names the world it was made on."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from search import experiment
from search.export import main
from tests.search.conftest import run_main



def _refused(capsys, args) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err.strip()


def test_nonexistent_experiment(capsys, tmp_path):
    line = _refused(capsys, [str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert line == f"error: {tmp_path / 'nope'}: no such experiment folder"
    assert not (tmp_path / "o").exists()


def test_empty_and_half_written_experiments(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _refused(capsys, [str(empty), "--out", str(tmp_path / "o")])
    assert line == (f"error: {empty}: no Tune experiment state in it (not a search.run experiment, "
                    "or its search never started)")
    half = tmp_path / "half"  # the driver died after recording the run, before Tune wrote anything
    half.mkdir()
    (half / "search_run.json").write_text('{"objective": "score"}')
    assert "no Tune experiment state" in _refused(capsys, [str(half), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("module", ["search.export", "search.confirm", "search.report"])
def test_an_experiment_with_no_trials(tmp_path, module):
    """What ``--num-samples 0`` used to leave behind: an empty trials.parquet."""
    exp = tmp_path / "exp"
    exp.mkdir()
    pd.DataFrame().to_parquet(exp / "trials.parquet")
    args = [str(exp)] + (["--out", str(tmp_path / "o")] if module == "search.export" else [])
    proc = run_main(module, *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == f"error: {exp}: the experiment has no trials"
    assert sorted(p.name for p in exp.iterdir()) == ["trials.parquet"] and not (tmp_path / "o").exists()


def test_out_is_an_existing_file(capsys, tmp_path, killed_search):
    out = tmp_path / "taken"
    out.write_text("mine")
    line = _refused(capsys, [str(killed_search.exp), "--out", str(out)])
    assert line == f"error: --out {out}: is a file, expected a folder"
    assert out.read_text() == "mine"


def _two_trials(tmp_path: Path, exp: Path) -> Path:
    """A copy of the experiment whose trials A (served i2i) and B (indexed) share one model."""
    copy = tmp_path / "exp"
    shutil.copytree(exp, copy, ignore=shutil.ignore_patterns("trainable_*", "best", "confirm", "report"))
    frame = pd.read_parquet(exp / "trials.parquet")
    row = frame[frame["status"] == "finished"].iloc[0]
    rows = []
    for name, i2i in (("A", True), ("B", False)):
        ckpt = tmp_path / f"ckpt_{name}"
        shutil.copytree(row["checkpoint"], ckpt)
        if i2i and not (ckpt / experiment.ITEM_RECS_FILE).exists():
            np.savez(ckpt / experiment.ITEM_RECS_FILE, users=np.array([0]), tracks=np.array([[1, 2]]))
        if not i2i:
            (ckpt / experiment.ITEM_RECS_FILE).unlink(missing_ok=True)
        rows.append({**row.to_dict(), "trial_id": name, "checkpoint": str(ckpt)})
    pd.DataFrame(rows).to_parquet(copy / "trials.parquet")
    return copy


def test_second_export_into_a_folder_needs_force_and_leaves_nothing_stale(capsys, tmp_path, killed_search):
    exp, out = _two_trials(tmp_path, killed_search.exp), tmp_path / "D"
    assert main([str(exp), "--trial", "A", "--out", str(out)]) == 0
    assert (out / "item_recommendations.json").is_file()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    line = _refused(capsys, [str(exp), "--trial", "B", "--out", str(out)])
    assert line == f"error: --out {out}: already exists and is not empty; pass --force to replace it"
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # untouched
    assert main([str(exp), "--trial", "B", "--out", str(out), "--force"]) == 0
    assert not (out / "item_recommendations.json").exists()  # nothing of A's export is left
    assert (out / "recommendations.json").is_file() and '"trial_id": "B"' in (out / "metrics.json").read_text()
    assert not list(tmp_path.glob(".D.*"))  # no temp folder left beside it


def test_out_may_not_hold_the_experiment(capsys, killed_search):
    line = _refused(capsys, [str(killed_search.exp), "--out", str(killed_search.exp.parent), "--force"])
    assert line == f"error: --out {killed_search.exp.parent}: holds {killed_search.exp}; choose another folder"


def test_an_export_names_the_experiment_trial_and_world_it_came_from(capsys, tmp_path, killed_search):
    """The killed search ran on a relative ``--world relw``: the export records the absolute path."""
    exp, out = _two_trials(tmp_path, killed_search.exp), tmp_path / "D"
    assert main([str(exp), "--trial", "B", "--out", str(out)]) == 0
    source = json.loads((out / "source.json").read_text())
    run = json.loads((killed_search.exp / "search_run.json").read_text())
    assert source == {"experiment": str(exp.resolve()), "trial_id": "B", "world": str(killed_search.world),
                      "logs": str(killed_search.world / "logs.parquet"), "config": run["config"]}
    best = json.loads((killed_search.exp / "best" / "source.json").read_text())
    assert best["world"] == str(killed_search.world) and best["experiment"] == str(killed_search.exp.resolve())
    finished = pd.read_parquet(killed_search.exp / "trials.parquet")
    assert best["trial_id"] in set(finished.loc[finished["status"] == "finished", "trial_id"])
