"""Joining an existing cluster: a head started with ``ray start --head`` here, then ``--address``."""
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def head():
    """A head node on 127.0.0.1; ``--block`` keeps its processes under this Popen, which we end."""
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: AF_UNIX socket paths ≤ 107 bytes
    proc = subprocess.Popen([RAY, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
                             "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_ready(proc, port)
    yield f"127.0.0.1:{port}"
    proc.terminate()  # `ray start --block` stops the node's processes when it is terminated
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_ready(proc, port, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited: {proc.stdout.read()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(2)
                return
        time.sleep(0.5)
    raise TimeoutError("ray head did not come up")


def test_search_joins_an_existing_cluster(head, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "search.run", "--smoke-test", "--num-samples", "1",
                           "--address", head, "--storage-path", str(tmp_path), "--name", "joined"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert f"joined Ray cluster at {head} (2 CPUs)" in proc.stdout
    frame = pd.read_parquet(tmp_path / "joined" / "trials.parquet")
    assert frame["status"].tolist() == ["finished"]
