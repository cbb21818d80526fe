"""The search on a Ray cluster of two nodes, with its experiment in S3, surviving a lost node.

A head and a worker node, each a separate ``ray start --block`` process with one CPU, its own temp
dir and ports, on 127.0.0.1 (:mod:`search.local_cluster`); the worker node runs in a working
directory and ``$BOTIFY_TUNE_CACHE`` of its own, on a Python that cannot import this project (it
gets the code only as the job's working_dir). An S3 server (moto) on 127.0.0.1 holds the
experiment. A smoke search joins the cluster with ``--storage-path s3://...``; once a trial has
finished on the worker node, the worker's raylet is SIGKILLed while its next trial runs there.

What must hold: the search finishes (exit 0); every trial ends exactly once, in trials.parquet and
in the Optuna study, and the one whose node died is recorded as retried; trials ran on both nodes;
the bucket holds the experiment (Tune's state, the journal, checkpoints, the results); the local
copy exports the same best trial the progress view named. Every process started here is stopped
by the fixture's finalizer (never ``ray stop``, which would stop every Ray on this machine).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
import pytest

from search.local_cluster import MULTI_NODE, LocalCluster, Node, bare_python, free_port
from tests.search.conftest import descendants

REPO = Path(__file__).resolve().parents[2]
NUM_SAMPLES = 10  # enough that a trial starts on the worker after its first one ends, even when the head runs faster
BUCKET = "botify-runs"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Run:
    """What the fixture saw."""

    root: Path
    log: str  # the driver's output
    rc: int
    exp: Path  # the local copy
    keys: list[str]  # the bucket's keys under the experiment
    head_id: str
    worker_id: str
    killed_at: float | None
    worker_cache: Path
    started_at: float


def _s3_server(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(root / "moto.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, endpoint
        time.sleep(0.2)
    proc.kill()
    raise TimeoutError("moto server did not start")


def _s3(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in CREDENTIALS.items()
                                                         if k != "AWS_DEFAULT_REGION"}, region_name="us-east-1")


def _results(head: Node) -> list[Path]:
    """The trials' result.json files in the driver's staging folder (under the head's temp dir)."""
    return list(head.temp_dir.glob("session_*/artifacts/*/*/driver_artifacts/*/result.json"))


def _ended_on(head: Node, exp: Path, node_id: str) -> int:
    """How many trials ended on ``node_id``: their final report came from it, or ASHA stopped them
    after reports from it (``asha_stopped.txt``)."""
    stopped = set((exp / "asha_stopped.txt").read_text().split()) if (exp / "asha_stopped.txt").is_file() else set()
    ended = 0
    for path in _results(head):
        rows = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        mine = [r for r in rows if r.get("node_id") == node_id]
        ended += bool(mine and (mine[-1].get("final") or mine[-1].get("trial_id") in stopped))
    return ended


def _training_on(node: Node) -> bool:
    """Whether a trial trains on ``node`` now: one of its raylet's worker processes runs a Tune
    trainable's ``train`` (Ray titles a worker running an actor method ``ray::<Class>.<method>``;
    the project's trainable is named ``trainable``)."""
    raylet = node.raylet_pid()
    if raylet is None:
        return False
    for pid in descendants(raylet):
        try:
            title = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if re.match(r"ray::\w+\.train\b", title):
            return True
    return False


def _kill_worker_during_its_second_trial(driver: subprocess.Popen, head: Node, worker: Node, exp: Path,
                                         worker_id: str, timeout: float = 900) -> float | None:
    """SIGKILL the worker's raylet once a trial ended there and another one trains there."""
    deadline = time.time() + timeout
    while time.time() < deadline and driver.poll() is None:
        if _ended_on(head, exp, worker_id) >= 1 and _training_on(worker):
            pid = worker.raylet_pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                return time.time()
        time.sleep(0.2)
    return None


@pytest.fixture(scope="module")
def run():
    root = Path(tempfile.mkdtemp(prefix="btm", dir="/tmp"))  # short: Ray's socket paths
    cluster = LocalCluster(root)
    s3 = None
    driver = None
    try:
        s3, endpoint = _s3_server(root)
        _s3(endpoint).create_bucket(Bucket=BUCKET)
        # not the loopback-only switch that an earlier local search in this process left behind
        base_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", *MULTI_NODE)}
        base_env.update(CREDENTIALS)
        cluster.start_head(num_cpus=1, env=base_env, cwd=root)
        python = bare_python(root / "venv")
        worker_dir, worker_cache = root / "worker-cwd", root / "worker-cache"
        worker_dir.mkdir()
        # the worker node's Python cannot import the project: it only gets it from the job
        probe = subprocess.run([python, "-c", "import search"], cwd=worker_dir, env=base_env, capture_output=True)
        assert probe.returncode != 0 and b"No module named 'search'" in probe.stderr
        worker = cluster.add_worker(num_cpus=1, env={**base_env, "BOTIFY_TUNE_CACHE": str(worker_cache)},
                                    cwd=worker_dir, python=python)
        head = cluster.nodes[0]
        head_id, worker_id = head.node_id(), worker.node_id()
        assert head_id and worker_id and head_id != worker_id
        uri = f"s3://{BUCKET}/exp?endpoint_override=127.0.0.1:{endpoint.rsplit(':', 1)[1]}&scheme=http"
        log_path = root / "driver.log"
        started_at = time.time()
        with open(log_path, "w") as log:
            driver = subprocess.Popen(
                [sys.executable, "-m", "search.run", "--smoke-test", "--num-samples", str(NUM_SAMPLES),
                 "--address", cluster.address, "--storage-path", uri, "--local-dir", str(root / "local"),
                 "--name", "mn", "--max-concurrent", "2"],
                cwd=root, env={**base_env, "PYTHONPATH": str(REPO), **cluster.auth_env()},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        killed_at = _kill_worker_during_its_second_trial(driver, head, worker, root / "local" / "mn", worker_id)
        rc = driver.wait(timeout=1200)
        listing = _s3(endpoint).list_objects_v2(Bucket=BUCKET, Prefix="exp/mn/", MaxKeys=1000)
        keys = [o["Key"] for o in listing.get("Contents", [])]
        yield Run(root, log_path.read_text(errors="replace"), rc, root / "local" / "mn", keys, head_id, worker_id,
                  killed_at, worker_cache, started_at)
    finally:
        if driver is not None and driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=60)
        cluster.stop()
        if s3 is not None:
            s3.terminate()
            try:
                s3.wait(timeout=30)
            except subprocess.TimeoutExpired:
                s3.kill()
        shutil.rmtree(root, ignore_errors=True)


def _tail(run: Run) -> str:
    return run.log[-6000:]


def test_the_search_survives_the_lost_node_and_ends_every_trial_once(run):
    assert run.killed_at is not None, "no trial ran on the worker node after its first one: " + _tail(run)
    assert run.rc == 0, _tail(run)
    frame = pd.read_parquet(run.exp / "trials.parquet")
    print(f"head {run.head_id[:12]}, worker {run.worker_id[:12]}; the worker's raylet SIGKILLed "
          f"{run.killed_at - run.started_at:.0f} s into the search")
    print(frame[["trial_id", "status", "node_id", "retries", "nodes"]].to_string())
    print("\n".join(line for line in run.log.splitlines() if " failed (" in line or "retried" in line))
    assert len(frame) == NUM_SAMPLES and frame["trial_id"].is_unique
    assert set(frame["status"]) <= {"finished", "stopped"}, frame["status"].tolist()  # none errored, none left
    retried = frame[frame["retries"] > 0]
    assert len(retried) == 1 and int(retried["retries"].iloc[0]) == 1, frame[["trial_id", "retries"]]
    assert retried["node_id"].iloc[0] == run.head_id  # it ended on the node that was left
    trial = retried["trial_id"].iloc[0]
    assert re.search(rf"trial {trial} failed \(.*\); retry 1 of 1 \(--max-failures\)", run.log), _tail(run)
    assert "(1 retried after a failure: --max-failures)" in run.log
    settings = json.loads((run.exp / "search_run.json").read_text())
    assert settings["max_failures"] == 1  # the default when joining a cluster


def test_trials_ran_on_both_nodes_each_with_its_own_cache(run):
    frame = pd.read_parquet(run.exp / "trials.parquet")
    assert {run.head_id, run.worker_id} <= set(frame["node_id"]), frame["node_id"].tolist()
    assert (frame.loc[frame["node_id"] == run.worker_id, "retries"] == 0).all()
    # the worker node built training data under its own $BOTIFY_TUNE_CACHE
    assert list((run.worker_cache / "training-data").glob("*.npz"))


def test_the_optuna_study_counts_every_trial_once(run):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run.exp / "optuna.journal")))
    study = optuna.load_study(study_name="mn", storage=storage)
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    print("optuna:", states)
    assert len(states) == NUM_SAMPLES
    assert set(states) <= {"COMPLETE", "PRUNED"}


def test_the_bucket_holds_the_experiment(run):
    print("\n".join(k for k in run.keys if k.count("/") <= 2 or k.endswith("model.pt")))
    names = {k.split("/", 3)[2] for k in run.keys}
    assert {"tuner.pkl", "search_run.json", "optuna.journal", "trials.parquet", "summary.md", "best"} <= names
    assert any(n.startswith("experiment_state-") for n in names)
    frame = pd.read_parquet(run.exp / "trials.parquet")
    finished = frame[frame["status"] == "finished"]
    assert not finished.empty
    for path in finished["path"]:
        assert any(k.startswith(f"exp/mn/{Path(path).name}/checkpoint_") and k.endswith("/model.pt")
                   for k in run.keys), path


def test_export_of_the_copy_gives_the_progress_views_best(run, tmp_path):
    best = re.findall(r"^best so far: (\w+) ", run.log, flags=re.M)
    assert best, _tail(run)
    proc = subprocess.run([sys.executable, "-m", "search.export", str(run.exp), "--out", str(tmp_path / "out")],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=300)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"exported trial {best[-1]} (finished)")
    assert (tmp_path / "out" / "checkpoint" / "model.pt").is_file()
