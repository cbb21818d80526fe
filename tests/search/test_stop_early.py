"""A search that stops early, driven through ``python -m search.run``'s own ``main`` with the fake
trainable of fake_trainable.py in place of the DSSM (the rest is the real driver: checks, inputs,
Ray, Tune, the Optuna journal, trials.parquet and summary.md; not best/, there is no model).

Ctrl-C: the trials that were running are FAIL in the Optuna journal (none left RUNNING for
optuna-dashboard), and ``--resume`` reruns them as new Optuna trials and completes the samples.
``--time-budget-s`` that ends before any trial finished: exit 2 with one line saying so, the run
kept for ``--resume``, which gives the search its budget again and starts new trials in place of
those the budget cut short.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

REPO = Path(__file__).resolve().parents[2]
DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from ray import tune
from search import run, trials
from tests.search.fake_trainable import fake_trial

trials.export_row = lambda *args, **kwargs: None  # best/: the fake trainable has no model to export
run.make_trainable = lambda *args, **kwargs: tune.with_resources(
    tune.with_parameters(fake_trial, epochs=2, sleep={sleep}), {{"cpu": 1}})
sys.exit(run.main({argv!r}))
"""


def _config(tmp_path: Path) -> Path:
    """configs/search.yaml without ASHA (the fake trainable reports no rung lift)."""
    data = yaml.safe_load((REPO / "configs" / "search.yaml").read_text())
    data["base"] = str(REPO / "configs" / data["base"])
    data["asha"]["enabled"] = False
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _driver(tmp_path: Path, sleep: float, *argv: str) -> subprocess.Popen:
    args = ["--smoke-test", "--config", str(_config(tmp_path)), "--storage-path", str(tmp_path / "runs"),
            "--name", "s", "--max-concurrent", "2", *argv]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FAKE_TRIAL_LOG": str(tmp_path / "trials.log")}
    script = DRIVER.format(repo=str(REPO), sleep=sleep, argv=args)
    return subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _states(exp: Path) -> list[optuna.trial.FrozenTrial]:
    from search.searcher import study_storage

    study = optuna.load_study(study_name=exp.name, storage=study_storage(exp))
    return study.get_trials(deepcopy=False)


def _finished(exp: Path) -> int:
    return sum('"final": true' in p.read_text() for p in exp.glob("*/result.json"))


def test_ctrl_c_marks_the_running_trials_failed_and_resume_reruns_them(tmp_path):
    exp = tmp_path / "runs" / "s"
    proc = _driver(tmp_path, 4.0, "--num-samples", "10")  # long enough that Ctrl-C lands mid-search under load
    try:
        deadline = time.time() + 300
        while _finished(exp) < 2 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        assert _finished(exp) >= 2, proc.communicate(timeout=60)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    frame = pd.read_parquet(exp / "trials.parquet")
    done = int((frame["status"] == "finished").sum())
    assert 2 <= done < 10, frame[["trial_id", "status"]]
    trials = _states(exp)
    count = {s: sum(t.state == s for t in trials) for s in TrialState}
    assert count[TrialState.RUNNING] == 0  # what optuna-dashboard would show running forever
    assert count[TrialState.FAIL] >= 1 and count[TrialState.COMPLETE] == done
    assert "marked FAIL" in out and "--resume" in out

    resumed = _driver(tmp_path, 1.0, "--resume")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    frame = pd.read_parquet(exp / "trials.parquet")
    assert len(frame) == 10 and set(frame["status"]) == {"finished"}
    trials = _states(exp)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(complete) == 10 and not [t for t in trials if t.state == TrialState.RUNNING]
    reruns = {t.user_attrs.get("rerun_of"): t for t in complete}
    for old in failed:  # each interrupted trial was run again with its own values
        assert old.number in reruns and reruns[old.number].params == old.params


def test_a_time_budget_that_ends_before_any_trial_finished_is_an_error(tmp_path):
    exp = tmp_path / "runs" / "s"
    proc = _driver(tmp_path, 30.0, "--num-samples", "4", "--time-budget-s", "5")
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out[-2000:] + err[-2000:]
    said = [line for line in err.splitlines() if line.startswith("error: ")]  # Ray's workers may log after it
    assert len(said) == 1, err[-2000:]
    last = said[0]
    assert last.startswith("error: no trial finished before the search stopped (") and "--time-budget-s 5" in last
    assert f"python -m search.run --resume --storage-path {exp.parent} --name s" in last
    assert not (exp / "best").exists()
    assert (exp / "tuner.pkl").is_file() and (exp / "search_run.json").is_file()  # resumable
    assert not [t for t in _states(exp) if t.state == TrialState.RUNNING]


def test_resume_after_the_time_budget_goes_on_with_a_fresh_budget(tmp_path):
    exp = tmp_path / "runs" / "s"
    first = _driver(tmp_path, 60.0, "--num-samples", "3", "--time-budget-s", "10")  # no trial can finish
    out, err = first.communicate(timeout=300)
    assert first.returncode == 2 and "no trial finished before the search stopped" in err, err[-2000:]
    cut = pd.read_parquet(exp / "trials.parquet")
    assert len(cut) == 2 and set(cut["stop_reason"]) == {"time_budget"}  # --max-concurrent 2

    # quick trials now, and a budget of their own: three new trials take the samples' places
    resumed = _driver(tmp_path, 0.2, "--resume", "--time-budget-s", "120")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out[-2000:] + err[-2000:]
    frame = pd.read_parquet(exp / "trials.parquet")
    finished = frame[frame["status"] == "finished"]
    assert len(finished) == 3 and not set(finished["trial_id"]) & set(cut["trial_id"])
    assert len(frame) == 5 and (frame["stop_reason"] == "time_budget").sum() == 2
    assert "trials ended; continue with" not in out  # the 3 samples are done
    assert not [t for t in _states(exp) if t.state == TrialState.RUNNING]
