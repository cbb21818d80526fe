"""The CLI end to end on the tiny world (real model, real simulator): the shared smoke search of
conftest.py, its trials table, TensorBoard files, best/, exports, confirmation and report."""
import json
import math
import re

import numpy as np
import pandas as pd

from model.config import load_experiment_config
from search.config import load_smoke
from tests.search.conftest import NUM_SAMPLES, run_main


def test_dashboard_url_is_local_and_printed(killed_search):
    assert "Ray dashboard: http://127.0.0.1:" in killed_search.first_log + killed_search.resume.stdout


def test_trials_table(killed_search):
    exp = killed_search.exp
    frame = pd.read_parquet(exp / "trials.parquet")
    assert len(frame) == NUM_SAMPLES
    for col in ("trial_id", "status", "duration_s", "val_loss", "time_per_session", "lift_vs_sticky",
                "lift_lower", "lift_upper", "score", "config/model.hidden_dim", "config/train.weight_decay"):
        assert col in frame.columns, col
    # ASHA (on by default) may stop a trial at its first rung; which one depends on timing
    assert set(frame["status"]) <= {"finished", "stopped"}
    assert frame.loc[frame["status"] == "stopped", "score"].isna().all()
    done = frame[frame["status"] == "finished"]
    assert len(done) >= 1
    for _, row in done.iterrows():
        assert row["lift_lower"] <= row["lift_vs_sticky"] <= row["lift_upper"]
        rel = row["val_loss"] / float(row["config/model.margin"])
        assert math.isclose(row["val_loss_rel"], rel, rel_tol=1e-9)
        assert math.isclose(row["score"], row["lift_vs_sticky"] - 1.0 * rel, rel_tol=1e-9)
    # why each trial ended: smoke trials train 1 epoch (max_epochs), or ASHA stopped them at their first rung
    assert "stop_reason" in frame.columns
    assert (done["stop_reason"] == "max_epochs").all()
    assert (frame.loc[frame["status"] == "stopped", "stop_reason"] == "asha").all()
    assert "config/train.min_delta" in frame.columns  # searched
    summary = (exp / "summary.md").read_text()
    assert ("| trial | state | epochs | rung_lift | lift_vs_sticky [95% CI] | serving | val_loss | stop_reason |"
            in summary) and "Stop reasons: " in summary
    # the progress view the resumed driver printed as its trial ended (the killed run's finished trial counts)
    out = killed_search.resume.stdout
    assert "best so far: " in out and "its config: " in out
    assert re.search(r"^  trial +state +epochs +rung_lift +lift_vs_sticky \[95% CI\] +serving +val_loss +stop_reason$",
                     out, re.M), out[-3000:]


def test_tensorboard_files_per_trial(killed_search):
    frame = pd.read_parquet(killed_search.exp / "trials.parquet")
    with_events = {p.parent.name for p in killed_search.exp.glob("*/events.out.tfevents.*")}
    assert all(any(f"_{t}_" in name for name in with_events) for t in frame["trial_id"])


def test_best_folder(killed_search):
    best = killed_search.exp / "best"
    cfg = load_experiment_config(best / "config.yaml")
    assert cfg.train.max_epochs == load_smoke().search.overrides["train.max_epochs"]  # the smoke override
    lines = (best / "recommendations.json").read_text().splitlines()
    first = json.loads(lines[0])
    emb, ids = np.load(best / "item_embeddings.npy"), np.load(best / "item_ids.npy")
    assert set(first) == {"user", "tracks"} and len(first["tracks"]) == min(cfg.serving.k, len(ids))
    assert emb.shape == (len(ids), cfg.model.embedding_dim)
    assert (best / "checkpoint" / "model.pt").is_file()
    assert json.loads((best / "metrics.json").read_text())["status"] == "finished"


def test_export_any_trial(killed_search, tmp_path):
    exp = killed_search.exp
    frame = pd.read_parquet(exp / "trials.parquet")
    for trial_id, status in zip(frame["trial_id"], frame["status"]):
        out = tmp_path / trial_id
        ran = run_main("search.export", str(exp), "--trial", trial_id, "--out", str(out))
        if status != "finished":  # stopped early: no final checkpoint, a clear error
            assert ran.returncode == 2 and "has no final checkpoint" in ran.stderr
            continue
        assert ran.returncode == 0, ran.stderr
        assert (out / "recommendations.json").is_file() and (out / "item_embeddings.npy").is_file()
    best_id = json.loads((exp / "best" / "metrics.json").read_text())["trial_id"]
    assert run_main("search.export", str(exp), "--out", str(tmp_path / "default")).returncode == 0
    best = (exp / "best" / "recommendations.json").read_text()
    assert (tmp_path / "default" / "recommendations.json").read_text() == best
    assert (tmp_path / best_id / "recommendations.json").read_text() == best


def test_confirm_and_report_run_on_the_smoke_experiment(killed_search, tmp_path):
    exp = killed_search.exp
    table = pd.read_csv(exp / "confirm" / "confirm.csv")  # written by search.run --confirm
    assert list(table.columns) == ["model", "metric", "effect", "upper", "lower", "control_mean",
                                   "treatment_mean", "significant"]
    assert (table["metric"] == "mean_time_per_session").any() and "confirmed" in killed_search.resume.stdout.lower()
    out = tmp_path / "report"
    assert run_main("search.report", str(exp), "--out", str(out)).returncode == 0
    html = (out / "report.html").read_text()
    # with three smoke trials some plots are skipped (importances need 2 finished); the A/B forest is not
    assert html.count("data:image/png;base64") >= 3 and "forest.png" in (out / "report.md").read_text()
    assert (out / "forest.png").is_file()
