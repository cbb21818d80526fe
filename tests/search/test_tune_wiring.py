"""The driver's Ray wiring with a tiny real function trainable (tests/search/fake_trainable.py):
an erroring trial does not stop the search; --resume raises the budget without rerunning
finished trials; Ctrl-C then resume completes the requested samples."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import ray
from ray import tune

from model.config import ExperimentConfig
from search import cluster, trials
from search.config import AshaConfig, SearchConfig
from search.space import parse_space
from search.run import make_tuner
from tests.search.fake_trainable import fake_trial

REPO = Path(__file__).resolve().parents[2]
SPACE = {"train.lr": {"type": "uniform", "low": 0.01, "high": 0.1},
         "model.hidden_dim": {"type": "choice", "values": [13, 32]}}


@pytest.fixture(scope="module")
def trial_log(tmp_path_factory):
    log = tmp_path_factory.mktemp("fake") / "trials.log"
    log.touch()
    env = {"PYTHONPATH": str(REPO), "FAKE_TRIAL_LOG": str(log)}
    os.environ["FAKE_TRIAL_LOG"] = str(log)
    cluster.start(None, "127.0.0.1", num_cpus=2, runtime_env={"env_vars": env})
    yield log
    ray.shutdown()


def _settings(n, seed=3):
    return {"num_samples": n, "seed": seed, "objective": "score", "max_concurrent": 2, "logs": "fake.parquet"}


def _tuner(exp_dir, n, resume=False, seed=3, sleep=0.0):
    trainable = tune.with_resources(tune.with_parameters(fake_trial, epochs=2, sleep=sleep), {"cpu": 1})
    spec = parse_space(SPACE, ExperimentConfig())
    scfg = SearchConfig(base="-", overrides={}, space=SPACE, asha=AshaConfig(enabled=False))  # wiring only: every trial runs to its end
    return make_tuner(trainable, exp_dir, _settings(n, seed), scfg, ExperimentConfig(), spec, resume)


def _ran(log: Path, exp_dir: Path) -> list[str]:
    ids = set(trials.trials_frame(exp_dir)["trial_id"])
    return [t for t in log.read_text().split() if t in ids]


def test_an_erroring_trial_does_not_stop_the_search(trial_log, tmp_path):
    _tuner(tmp_path / "err", 6).fit()
    frame = trials.trials_frame(tmp_path / "err")
    assert len(frame) == 6
    assert set(frame["status"]) == {"finished", "errored"}
    errored = frame[frame["status"] == "errored"]
    assert (errored["config/model.hidden_dim"] == 13).all()
    assert (frame[frame["status"] == "finished"]["config/model.hidden_dim"] == 32).all()


def test_resume_with_a_larger_budget_reruns_nothing(trial_log, tmp_path):
    exp = tmp_path / "grow"
    _tuner(exp, 2, seed=5).fit()
    first = set(trials.trials_frame(exp)["trial_id"])
    assert len(first) == 2
    _tuner(exp, 4, resume=True, seed=5).fit()
    frame = trials.trials_frame(exp)
    assert len(frame) == 4 and first < set(frame["trial_id"])
    ran = _ran(trial_log, exp)
    assert sorted(ran) == sorted(frame["trial_id"])  # every trial started exactly once


DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from tests.search import test_tune_wiring as t
    from search import cluster
    cluster.start(None, "127.0.0.1", num_cpus=2, runtime_env={{"env_vars": {{"PYTHONPATH": {repo!r},
                  "FAKE_TRIAL_LOG": {log!r}}}}})
    t._tuner(Path({exp!r}), 6, seed=7, sleep=1.0).fit()
""")


def test_ctrl_c_then_resume_completes_the_samples(trial_log, tmp_path):
    exp = tmp_path / "ctrlc"
    script = DRIVER.format(repo=str(REPO), log=str(trial_log), exp=str(exp))
    env = {**os.environ, "FAKE_TRIAL_LOG": str(trial_log)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=REPO)
    try:
        _wait_for_finished(exp, 2, timeout=120)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = trials.trials_frame(exp)
    finished_before = set(before[before["status"] == "finished"]["trial_id"])
    assert 2 <= len(finished_before) < 6
    assert set(before["status"]) <= {"finished", "errored", "running", "pending"}  # interrupted ones
    _tuner(exp, 6, resume=True, seed=7, sleep=1.0).fit()
    frame = trials.trials_frame(exp)
    assert len(frame) == 6 and set(frame["status"]) <= {"finished", "errored"}
    ran = _ran(trial_log, exp)
    assert all(ran.count(t) == 1 for t in finished_before)  # finished trials were not rerun


def _wait_for_finished(exp: Path, n: int, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = sum('"final": true' in p.read_text() for p in exp.glob("*/result.json"))
        if done >= n:
            return
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {n} trials finished in {timeout}s")


def test_a_search_where_every_trial_errors_is_an_error(trial_log, tmp_path, capsys):
    """No finished trial: ``finish`` raises (the CLI prints it as one line, exit 2), no ``best/``."""
    from search.errors import SearchError
    from search.run import finish

    spec = parse_space({**SPACE, "model.hidden_dim": {"type": "choice", "values": [13]}}, ExperimentConfig())
    trainable = tune.with_resources(tune.with_parameters(fake_trial, epochs=1), {"cpu": 1})
    exp = tmp_path / "all_errored"
    make_tuner(trainable, exp, _settings(2), SearchConfig(base="-", overrides={}, space=SPACE), ExperimentConfig(), spec, False).fit()
    with pytest.raises(SearchError) as info:
        finish(exp, _settings(2))
    message = str(info.value)
    assert message.startswith("no trial finished (2 errored); first error: ") and "boom" in message, message
    assert message.endswith(f"see {exp / 'summary.md'}")
    assert not (exp / "best").exists() and "results:" not in capsys.readouterr().out
