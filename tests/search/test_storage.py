"""search.storage: a storage URI checked before Ray starts, and an experiment's local copy."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search import storage
from search.errors import SearchError
from search.local_cluster import free_port

REPO = Path(__file__).resolve().parents[2]
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with one bucket, ``runs``; yields its endpoint query."""
    import boto3

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.time() < deadline, "moto server did not start"
            time.sleep(0.2)
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket="runs")
        yield f"endpoint_override=127.0.0.1:{port}&scheme=http"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def aws(monkeypatch):
    for key, value in KEYS.items():
        monkeypatch.setenv(key, value)


def test_uri_paths_keep_the_query_at_the_end():
    assert storage.is_uri("s3://b/p") and storage.is_uri("file:///x") and not storage.is_uri("./runs")
    assert storage.join("s3://b/p/?endpoint_override=h:1&scheme=http", "exp") == "s3://b/p/exp?endpoint_override=h:1&scheme=http"
    location = storage.Location(Path("/local/exp"), "s3://b/p/exp?scheme=http")
    assert location.storage_path == "s3://b/p?scheme=http" and location.tune_path == "s3://b/p/exp?scheme=http"
    assert storage.Location(Path("/local/exp")).storage_path == "/local"
    assert storage.redact("s3://b/p?endpoint_override=h:1") == "s3://b/p"


@pytest.mark.parametrize("uri, expected", [
    ("foo://bucket/exp", "Unrecognized filesystem type in URI"),
    ("s3://KEY:HUSH@bucket/exp", "credentials in the URI would be stored"),
])
def test_a_bad_uri_is_one_line(uri, expected):
    with pytest.raises(SearchError, match=expected) as info:
        storage.check(uri)
    assert "HUSH" not in str(info.value) and "\n" not in str(info.value)


def test_a_missing_bucket_is_refused(s3, aws):
    with pytest.raises(SearchError, match="bucket 'no-such-bucket' does not exist"):
        storage.check(f"s3://no-such-bucket/exp?{s3}")
    storage.check(f"s3://runs/exp?{s3}")  # the bucket there: fine, and the probe left nothing behind
    assert storage.files(f"s3://runs/exp?{s3}", "*") == []


def test_an_unreachable_endpoint_is_refused(aws):
    with pytest.raises(SearchError, match=r"cannot reach bucket 'runs' \(.*\); check the endpoint"):
        storage.check(f"s3://runs/exp?endpoint_override=127.0.0.1:{free_port()}&scheme=http")


def test_aws_endpoint_url_reaches_the_server(s3, aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://" + s3.split("=")[1].split("&")[0])
    storage.check("s3://runs/exp")
    with pytest.raises(SearchError, match="does not exist"):
        storage.check("s3://nope-bucket/exp")


def test_upload_then_download_makes_a_complete_copy(s3, aws, tmp_path):
    local = tmp_path / "a"
    (local / "trial_1" / "checkpoint_000000").mkdir(parents=True)
    (local / "trial_1" / "checkpoint_000000" / "model.pt").write_bytes(b"w")
    (local / "tuner.pkl").write_bytes(b"t")
    (local / "optuna.journal").write_text("journal\n")
    remote = f"s3://runs/copy/a?{s3}"
    storage.upload(local, remote, ("trial_1", "tuner.pkl", "optuna.journal"))
    copy = tmp_path / "copy"
    (copy).mkdir()
    (copy / "optuna.journal").write_text("newer here\n")
    storage.download(remote, copy)
    assert (copy / "trial_1" / "checkpoint_000000" / "model.pt").read_bytes() == b"w"
    assert (copy / "tuner.pkl").read_bytes() == b"t"
    assert (copy / "optuna.journal").read_text() == "newer here\n"  # the driver's own file is kept
    storage.download(remote, tmp_path / "fresh", skip=())
    assert (tmp_path / "fresh" / "optuna.journal").read_text() == "journal\n"
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp folder left
    assert storage.exists(remote, "tuner.pkl") and not storage.exists(remote, "nothing")


def test_a_file_uri_copies_both_ways(tmp_path):
    local = tmp_path / "here" / "a"
    (local / "best").mkdir(parents=True)
    (local / "best" / "config.yaml").write_text("x: 1\n")
    (local / "search_run.json").write_text("{}\n")
    remote = f"file://{tmp_path / 'shared'}/a"  # a folder that does not exist yet
    storage.upload(local, remote, ("search_run.json", "best"))
    assert (tmp_path / "shared" / "a" / "best" / "config.yaml").read_text() == "x: 1\n"
    storage.download(remote, tmp_path / "copy", skip=())
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["best", "search_run.json"]


def test_the_search_refuses_a_missing_bucket_before_ray_starts(s3, tmp_path):
    """The new user's try from the issue: one line, exit 2, and no local folder named ``s3:``."""
    env = {**os.environ, **KEYS, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "search.run", "--smoke-test", "--storage-path",
                           f"s3://no-such-bucket/exp?{s3}"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --storage-path s3://no-such-bucket/exp: bucket 'no-such-bucket' does not exist (or these "
        "credentials cannot see it); create it first"]
    assert "Ray" not in proc.stdout and list(tmp_path.iterdir()) == []


def test_file_uri_raise_budget_and_flags(tmp_path):
    import ray.cloudpickle as cloudpickle

    from search.run import parse_args, check_args, locate, raise_budget

    state = tmp_path / "shared" / "exp" / "search_gen_state-1.json"
    state.parent.mkdir(parents=True)
    state.write_bytes(cloudpickle.dumps({"total_samples": 3, "finished": True, "counter": 3}))
    raise_budget(f"file://{state.parent}", 5)
    assert cloudpickle.loads(state.read_bytes()) == {"total_samples": 5, "finished": False, "counter": 3}
    args = parse_args(["--storage-path", f"file://{tmp_path / 'shared'}", "--local-dir", str(tmp_path / "here"),
                       "--name", "exp"])
    check_args(args)
    location = locate(args)
    assert location.local == tmp_path / "here" / "exp" and location.remote == f"file://{tmp_path / 'shared'}/exp"
    for argv, message in ((["--max-failures", "-1"], "--max-failures must be >= 0"),
                          (["--local-dir", "s3://b/x"], "--local-dir s3://b/x: expected a local folder"),
                          (["--resume", "--storage-path", "s3://b/x"], "--resume with a URI --storage-path needs --name")):
        with pytest.raises(SearchError, match=message):
            check_args(parse_args(argv))
