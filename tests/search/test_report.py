"""search.report on a tiny synthesized experiment (trials.parquet + Tune trial folders), rendered in
headless Chromium. The experiment has the layout ``search.run`` writes; nothing is trained."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from search import report
from search.report import rung_correlations
from search.timeline import best_at, time_to, timeline

ROOT = Path(__file__).resolve().parents[2]
PNGS = ["history.png", "importances.png", "parallel.png", "loss_vs_lift.png", "forest.png", "training_curves.png"]
CHROMIUM = "/usr/bin/chromium"
STATUSES = ["finished", "finished", "finished", "finished", "finished", "errored", "stopped"]
REASONS = ["max_epochs", "early_stopping", "rung_plateau"]


def _epochs(n: int, lr: float) -> list[dict]:
    return [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "lr": lr, "final": False, "timestamp": 1000 + e}
            for e in range(1, n + 1)]


def make_experiment(root: Path, objective: str = "score") -> Path:
    """Seven trials over part of configs/search.yaml's space: five finished, one errored, one stopped."""
    exp, rng, rows = root / "exp", np.random.default_rng(0), []
    exp.mkdir()
    (exp / "search_run.json").write_text(json.dumps({"config": str(ROOT / "configs/search.yaml"), "seed": 0,
                                                     "objective": objective, "smoke_test": True}))
    for i, status in enumerate(STATUSES):
        tid, lr, margin = f"t{i:07d}", float(10 ** rng.uniform(-3.5, -2)), float(rng.uniform(0.1, 1.0))
        folder = exp / f"run_trial_{tid}_{i}"
        folder.mkdir()
        val_loss, lift = 0.05 + 0.02 * i, float(rng.normal(5, 3))
        reports = _epochs(3, lr)
        if status == "finished":
            reports.append({"val_loss": val_loss, "final": True, "timestamp": 2000 + 10 * (7 - i)})  # reverse order
        if i == 1:  # this trial only has Tune's CSV
            pd.DataFrame(reports).to_csv(folder / "progress.csv", index=False)
        else:
            (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in reports))
        done = status == "finished"
        rows.append({"trial_id": tid, "status": status, "duration_s": 10.0 + i,
                     "config/model.hidden_dim": [32, 64, 128][i % 3], "config/model.norm": ["none", "l2"][i % 2],
                     "config/model.artist_embedding": bool(i % 2), "config/model.margin": margin,
                     "config/train.lr": lr, "config/train.min_delta": [0.0, 1e-4, 3e-4, 1e-3, 3e-3][i % 5],
                     "config/seed": 0,
                     "stop_reason": {"errored": "error", "stopped": "asha"}.get(status, REASONS[i % 3]),
                     "val_loss": val_loss if done else np.nan, "time_per_session": 3 * (1 + lift / 100) if done else np.nan,
                     "lift_vs_sticky": lift if done else np.nan, "lift_lower": lift - 2 if done else np.nan,
                     "lift_upper": lift + 2 if done else np.nan, "score": lift - val_loss / margin if done else np.nan,
                     "epoch": 3.0, "checkpoint": None, "path": str(folder)})
    pd.DataFrame(rows).to_parquet(exp / "trials.parquet", index=False)
    return exp


def ab_table(path: Path, models: list[str], effects: list[float]) -> Path:
    rows = [{"model": m, "metric": metric, "effect": e, "upper": e + 3, "lower": e - 3, "control_mean": 3.0,
             "treatment_mean": 3.0 * (1 + e / 100), "significant": abs(e) > 3}
            for m, e in zip(models, effects) for metric in ("time", "mean_time_per_session")]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    exp = make_experiment(root)
    ab_table(exp / "confirm" / "confirm.csv", ["t0000000 indexed (8000 sessions)", "t0000000 indexed (50000 sessions)"],
             [12.0, 11.0])
    seeds = ab_table(root / "seed_table.csv", ["seed_best", "seed_small"], [0.7, -4.2])
    assert report.main([str(exp), "--ab-table", str(seeds)]) == 0
    return exp / "report"


def test_files_and_markdown(built):
    md = (built / "report.md").read_text()
    for png in PNGS:
        assert (built / png).stat().st_size > 1000, png
        assert f"]({png})" in md, png
    assert "seed_table: seed_best" not in md  # labels live in the plot; the table keeps the model names
    assert "| seed_small |" in md and "| t0000000 indexed (50000 sessions) |" in md
    assert "Trials: 1 errored, 5 finished, 1 stopped." in md
    # why trials ended: a count per stop reason
    stops = md.split("## Why trials ended")[1].split("\n## ")[0]
    for reason, n in [("rung_plateau", 1), ("asha", 1), ("early_stopping", 2), ("max_epochs", 2), ("error", 1)]:
        assert f"| {reason} | {n} |" in stops, (reason, stops)
    # train.min_delta's importance is listed next to the other sampled keys
    imps = md.split("## Parameter importances")[1].split("\n## ")[0]
    assert "| train.min_delta |" in imps and "| train.lr |" in imps
    assert not list(built.glob(".*tmp*"))  # atomic writes leave no temp files


def test_html_is_self_contained(built):
    page = (built / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page.lower()
    assert page.count('src="data:image/png;base64,') == len(PNGS)


def test_history_in_completion_order(tmp_path):
    exp = make_experiment(tmp_path)
    frame, _, obj = report.load_experiment(exp)
    order = report.finished(frame, obj, exp)["trial_id"].tolist()
    assert order == [f"t{i:07d}" for i in (4, 3, 2, 1, 0)]  # final timestamps run backwards


def test_missing_confirm_is_a_note_and_multi_mode(tmp_path):
    exp = make_experiment(tmp_path, objective="multi")
    assert report.main([str(exp), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "No `confirm/confirm.csv`" in md and "forest.png" not in md
    assert "Pareto front:" in md and "| pareto |" in md  # the front marked in the plot's note and the table


def test_an_existing_report_is_kept_unless_force(built, capsys, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(built.parent, exp)
    built = exp / "report"
    before = {p.name: p.read_bytes() for p in built.iterdir()}
    assert report.main([str(exp)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --out {built}: already exists and is not empty; pass --force to replace it\n"
    assert {p.name: p.read_bytes() for p in built.iterdir()} == before
    (built / "stale.png").write_bytes(b"from an older report")
    assert report.main([str(exp), "--force"]) == 0
    assert not (built / "stale.png").exists() and (built / "report.html").is_file()


def test_folder_without_trials_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "search.report", str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2
    assert "has no trials.parquet" in proc.stderr and "Traceback" not in proc.stderr


def _chromium(binary: str, args: list[str], profile: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


def test_renders_in_headless_chromium(built, tmp_path):
    binary = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).is_file() else None)
    assert binary, "headless Chromium is missing: apt-get install -y chromium (Debian's package; CI installs it)"
    url = (built / "report.html").as_uri()
    shot = tmp_path / "shot.png"
    proc = _chromium(binary, [f"--screenshot={shot}", "--window-size=1200,2000", url], tmp_path / "profile1")
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3].reshape(-1, 3)
    assert len(np.unique((pixels * 255).astype(np.uint8), axis=0)) > 50  # text and plots, not a blank page
    dom = _chromium(binary, ["--dump-dom", url], tmp_path / "profile2").stdout
    imgs = re.findall(r"<img [^>]*>", dom)
    assert len(imgs) == len(PNGS)
    assert all('src="data:image/png;base64,' in tag for tag in imgs)


# ---------------------------------------------------------------- the search over wall-clock time


def frame() -> pd.DataFrame:
    # four trials started at t0 = 1000 s; ends at +60, +90, +150, +200 s
    return pd.DataFrame({
        "trial_id": ["a", "b", "c", "d"], "status": ["finished", "stopped", "finished", "finished"],
        "timestamp": [1060.0, 1090.0, 1150.0, 1200.0], "duration_s": [60.0, 30.0, 100.0, 80.0],
        "lift_vs_sticky": [50.0, math.nan, 80.0, 70.0],
        "rung_lift_1": [40.0, 10.0, 75.0, 60.0], "rung_lift_3": [55.0, math.nan, 50.0, math.nan],
    })


def test_timeline_and_best_at():
    line = timeline(frame())  # t0 = the earliest start: min(1060 - 60, 1090 - 30, ...) = 1000
    assert line["end_s"].tolist() == [60.0, 90.0, 150.0, 200.0]
    assert math.isnan(best_at(line, 59.0))
    assert best_at(line, 60.0) == 50.0 and best_at(line, 100.0) == 50.0  # stopped trials have no lift
    assert best_at(line, 150.0) == 80.0 and best_at(line, 1e9) == 80.0
    assert timeline(frame(), started_at=960.0)["end_s"].tolist() == [100.0, 130.0, 190.0, 240.0]


def test_time_to_target():
    line = timeline(frame())
    assert time_to(line, 70.0) == 150.0 and time_to(line, 50.0) == 60.0 and math.isnan(time_to(line, 81.0))


def test_rung_correlations_use_finished_trials():
    table = rung_correlations(frame()).set_index("rung_epoch")
    # rung 1 over a, c, d: ranks (1, 3, 2) vs final (1, 3, 2): rho = 1
    assert table.loc[1, "trials"] == 3 and math.isclose(table.loc[1, "spearman"], 1.0)
    assert table.loc[3, "trials"] == 2 and math.isnan(table.loc[3, "spearman"])  # too few to rank
