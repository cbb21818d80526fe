"""search.confirm on a smoke search (real model, real simulator): the table, the seed guard, errors."""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from search.confirm import search_eval_seed
from search.config import load_smoke, objective
from search.trials import ranked
from sim_bridge.abtest import TABLE_COLUMNS
from tests.search.conftest import run_main

METRICS = ["time", "sessions", "mean_tracks_per_session", "mean_time_per_session"]
TOP_K = 3  # search.run --confirm: the top 3, at configs/smoke.yaml's sizes in smoke mode
SIZES = load_smoke().search.confirm_sessions
SMOKE_ARGS = ["--sessions", *map(str, SIZES)]


def cli(module: str, *args: str):
    return run_main(module, *args)


@pytest.fixture(scope="module")
def smoke_exp(killed_search):
    """The shared smoke search of conftest.py (killed once and resumed with --confirm)."""
    return killed_search.exp


@pytest.fixture(scope="module")
def confirmed(killed_search):
    """The confirmation ``search.run --confirm`` wrote, and what it printed."""
    return killed_search.exp, killed_search.resume.stdout


def test_confirm_csv_has_the_seeds_columns_and_a_row_per_trial_size_metric(confirmed):
    exp, stdout = confirmed
    table = pd.read_csv(exp / "confirm" / "confirm.csv")
    assert list(table.columns) == list(TABLE_COLUMNS)
    done = pd.read_parquet(exp / "trials.parquet").query("status == 'finished'")
    n_trials = min(TOP_K, len(done))
    assert len(table) == n_trials * len(SIZES) * len(METRICS)
    assert table["metric"].tolist() == METRICS * (n_trials * len(SIZES))
    for trial_id in ranked(done, objective("score")).head(TOP_K)["trial_id"]:  # the top-k trials
        for size in SIZES:
            rows = table[table["model"].str.startswith(f"{trial_id} ") & table["model"].str.endswith(f"({size} sessions)")]
            assert len(rows) == len(METRICS)
    assert (table["lower"] <= table["effect"]).all() and (table["effect"] <= table["upper"]).all()
    md = (exp / "confirm" / "confirm.md").read_text()
    assert "| model | metric | effect |" in md
    assert md.count("- trial ") == n_trials and f"win at {SIZES[-1]} sessions" in md
    assert stdout.count("A/B ") >= n_trials * len(SIZES)  # progress per A/B


def test_confirm_is_deterministic_for_a_seed(confirmed, tmp_path):
    exp, _ = confirmed
    first = (exp / "confirm" / "confirm.csv").read_text()
    proc = cli("search.confirm", str(exp), *SMOKE_ARGS, "--force")
    assert proc.returncode == 0
    assert (exp / "confirm" / "confirm.csv").read_text() == first


def test_search_eval_seed_is_refused(smoke_exp):
    settings = json.loads((smoke_exp / "search_run.json").read_text())
    eval_seed = search_eval_seed(settings)
    for seed in (eval_seed, eval_seed - 1):  # the seed itself, or a range that reaches it
        proc = cli("search.confirm", str(smoke_exp), "--seed", str(seed), "--sessions", "300", "600")
        assert proc.returncode != 0 and "eval.seed" in proc.stderr and "Traceback" not in proc.stderr


def test_clean_errors(smoke_exp, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("search.confirm", str(empty))
    assert proc.returncode != 0 and "trials.parquet not found" in proc.stderr and "Traceback" not in proc.stderr

    none_done = tmp_path / "none_done"
    none_done.mkdir()
    frame = pd.read_parquet(smoke_exp / "trials.parquet").assign(status="errored")
    frame.to_parquet(none_done / "trials.parquet")
    shutil.copy(smoke_exp / "search_run.json", none_done)
    proc = cli("search.confirm", str(none_done))
    assert proc.returncode != 0 and "no finished trial" in proc.stderr and "Traceback" not in proc.stderr

    no_ckpt = tmp_path / "no_ckpt"
    no_ckpt.mkdir()
    pd.read_parquet(smoke_exp / "trials.parquet").assign(checkpoint=None).to_parquet(no_ckpt / "trials.parquet")
    shutil.copy(smoke_exp / "search_run.json", no_ckpt)
    proc = cli("search.confirm", str(no_ckpt))
    assert proc.returncode != 0 and "has no checkpoint" in proc.stderr and "Traceback" not in proc.stderr


def _copy_with_world(exp: Path, tmp_path: Path, world: str) -> Path:
    """A copy of the experiment whose search_run.json records ``world`` (checkpoints stay shared)."""
    copy = tmp_path / "exp"
    shutil.copytree(exp, copy, ignore=shutil.ignore_patterns("trainable_*", "best", "confirm", "report"))
    settings = json.loads((copy / "search_run.json").read_text())
    (copy / "search_run.json").write_text(json.dumps({**settings, "world": world}))
    return copy


@pytest.mark.parametrize("recorded", ["gone", "relw"])
def test_a_recorded_world_that_is_gone_or_relative_is_an_error(killed_search, tmp_path, recorded):
    world = str(tmp_path / "gone") if recorded == "gone" else "relw"  # "relw": as older runs stored it
    exp = _copy_with_world(killed_search.exp, tmp_path, world)
    proc = cli("search.confirm", str(exp), "--top-k", "1", "--sessions", "300", "600")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == "", proc.stdout[-2000:]
    expected = (f"error: {exp / 'search_run.json'}: world {world} is gone; restore it (the search ran on it)"
                if recorded == "gone" else
                f"error: {exp / 'search_run.json'}: world 'relw' is a relative path, so it cannot be found "
                "reliably; write its absolute path there or pass --world")
    assert proc.stderr.strip() == expected
    assert not (exp / "confirm").exists()


def test_an_earlier_confirmation_is_kept_unless_force(killed_search, tmp_path):
    exp = _copy_with_world(killed_search.exp, tmp_path, str(killed_search.world))
    (exp / "confirm").mkdir()
    (exp / "confirm" / "confirm.md").write_text("an earlier confirmation")
    args = ["search.confirm", str(exp), "--top-k", "1", "--sessions", "300", "600"]
    proc = cli(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"error: confirm folder {exp / 'confirm'}: already exists and is not empty; "
                                   "pass --force to replace it")
    assert (exp / "confirm" / "confirm.md").read_text() == "an earlier confirmation"
    proc = cli(*args, "--force")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (exp / "confirm").iterdir()) == ["confirm.csv", "confirm.md"]
    assert "an earlier confirmation" not in (exp / "confirm" / "confirm.md").read_text()
