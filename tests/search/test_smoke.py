"""The CLI end to end on the tiny world (real model, real simulator), then export."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.config import load_experiment_config

REPO = Path(__file__).resolve().parents[2]


def run_cli(module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{module} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    storage = tmp_path_factory.mktemp("runs")
    proc = run_cli("search.run", "--smoke-test", "--num-samples", "2", "--storage-path", str(storage),
                   "--name", "smoke", "--seed", "1", "--confirm")
    return storage / "smoke", proc.stdout


def test_dashboard_url_is_local_and_printed(smoke_run):
    _, stdout = smoke_run
    assert "Ray dashboard: http://127.0.0.1:" in stdout


def test_trials_table(smoke_run):
    exp, _ = smoke_run
    frame = pd.read_parquet(exp / "trials.parquet")
    assert len(frame) == 2
    for col in ("trial_id", "status", "duration_s", "val_loss", "time_per_session", "lift_vs_sticky",
                "lift_lower", "lift_upper", "score", "config/model.hidden_dim", "config/train.weight_decay"):
        assert col in frame.columns, col
    # ASHA may stop the worse trial at its first rung (which one depends on timing)
    assert set(frame["status"]) <= {"finished", "stopped"}
    done = frame[frame["status"] == "finished"]
    assert len(done) >= 1
    assert frame.loc[frame["status"] == "stopped", "score"].isna().all()
    row = done.iloc[0]
    assert row["lift_lower"] <= row["lift_vs_sticky"] <= row["lift_upper"]
    rel = row["val_loss"] / float(row["config/model.margin"])
    assert math.isclose(row["val_loss_rel"], rel, rel_tol=1e-9)
    assert math.isclose(row["score"], row["lift_vs_sticky"] - 1.0 * rel, rel_tol=1e-9)
    assert "| trial_id |" in (exp / "summary.md").read_text()


def test_tensorboard_files_per_trial(smoke_run):
    exp, _ = smoke_run
    assert len(list(exp.glob("*/events.out.tfevents.*"))) == 2


def test_best_folder(smoke_run):
    exp, _ = smoke_run
    best = exp / "best"
    cfg = load_experiment_config(best / "config.yaml")
    assert cfg.train.max_epochs == 2  # the smoke override
    lines = (best / "recommendations.json").read_text().splitlines()
    first = json.loads(lines[0])
    emb, ids = np.load(best / "item_embeddings.npy"), np.load(best / "item_ids.npy")
    assert set(first) == {"user", "tracks"} and len(first["tracks"]) == min(cfg.serving.k, len(ids))
    assert emb.shape == (len(ids), cfg.model.embedding_dim)
    assert (best / "checkpoint" / "model.pt").is_file()
    assert json.loads((best / "metrics.json").read_text())["status"] == "finished"


def test_export_any_trial(smoke_run, tmp_path):
    exp, _ = smoke_run
    frame = pd.read_parquet(exp / "trials.parquet")
    for trial_id, status in zip(frame["trial_id"], frame["status"]):
        out = tmp_path / trial_id
        if status != "finished":  # stopped early: no final checkpoint, a clear error
            proc = subprocess.run([sys.executable, "-m", "search.export", str(exp), "--trial", trial_id,
                                   "--out", str(out)], cwd=REPO, capture_output=True, text=True)
            assert proc.returncode != 0 and "has no final checkpoint" in proc.stderr
            continue
        run_cli("search.export", str(exp), "--trial", trial_id, "--out", str(out))
        assert (out / "recommendations.json").is_file() and (out / "item_embeddings.npy").is_file()
    best_id = json.loads((exp / "best" / "metrics.json").read_text())["trial_id"]
    run_cli("search.export", str(exp), "--out", str(tmp_path / "default"))
    assert (tmp_path / "default" / "recommendations.json").read_text() == (exp / "best" / "recommendations.json").read_text()
    assert (tmp_path / best_id / "recommendations.json").read_text() == (exp / "best" / "recommendations.json").read_text()


def test_cli_resume_extends_a_run_without_rerunning(tmp_path):
    common = ["--smoke-test", "--storage-path", str(tmp_path), "--name", "grow"]
    run_cli("search.run", *common, "--num-samples", "1")
    exp = tmp_path / "grow"
    first = pd.read_parquet(exp / "trials.parquet")
    (result_file,) = exp.glob(f"*{first['trial_id'][0]}*/result.json")
    before = result_file.read_text()
    proc = run_cli("search.run", "--resume", "--storage-path", str(tmp_path), "--num-samples", "2")  # newest run
    frame = pd.read_parquet(exp / "trials.parquet")
    assert len(frame) == 2 and first["trial_id"][0] in set(frame["trial_id"])
    assert result_file.read_text() == before  # the finished trial was not run again
    assert "continue with" not in proc.stdout


def test_confirm_and_report_run_on_the_smoke_experiment(smoke_run):
    exp, stdout = smoke_run
    table = pd.read_csv(exp / "confirm" / "confirm.csv")  # written by search.run --confirm
    assert list(table.columns) == ["model", "metric", "effect", "upper", "lower", "control_mean",
                                   "treatment_mean", "significant"]
    assert (table["metric"] == "mean_time_per_session").any() and "confirmed" in stdout.lower()
    run_cli("search.report", str(exp))
    html = (exp / "report" / "report.html").read_text()
    # with two smoke trials some plots are skipped (importances need 2 finished); the A/B forest is not
    assert html.count("data:image/png;base64") >= 3 and "forest.png" in (exp / "report" / "report.md").read_text()
    assert (exp / "report" / "forest.png").is_file()
