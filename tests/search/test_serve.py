"""The service over HTTP: botify's API, an A/B of an exported i2i trial vs sticky_artist on two
replicas, a load test that loses no log line, and a clean stop on SIGTERM.

One service runs for the whole module (Ray Serve takes seconds to start); the stop test is last.
"""
import json
import os
import signal
import socket
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.config import ExperimentConfig
from sim_bridge.contract.recs import ServingConfig, write_item_recs, write_user_recs
from search import experiment
from search.serve import host_warning, main as serve_main
from sim_bridge.contract import columns as C
from sim_bridge.defaults import ensure_smoke_world
from sim_bridge.drive import DriveConfig, drive
from sim_bridge.contract.events import sessionize
from sim_bridge.contract.logs import read_logs
from sim_bridge.simulator import nearest_by_inner_product
from sim_bridge.world import load_world

from tests.service_process import ServiceProcess, free_port

EXPERIMENT = "serve-test"
API_USER = 10**9  # beyond the world's user ids: the API tests' events stay apart from the load test's
BAD_BODIES = [
    b"", b"{", b"[1, 2]", b'"x"', b'{"time": 1.0}', b'{"track": 3}', b'{"track": "3", "time": 1.0}',
    b'{"track": true, "time": 1.0}', b'{"track": 3.5, "time": 1.0}', b'{"track": -1, "time": 1.0}',
    b'{"track": 2000, "time": 1.0}', b'{"track": 3, "time": 1.5}', b'{"track": 3, "time": "1"}',
    b'{"track": 3, "time": null}', b"\xff\xfe",
]


def export_folder(world, out):
    """A search.export-style folder of an i2i trial: the 20 tracks nearest to each track."""
    n = world.catalog.n_tracks
    near = nearest_by_inner_product(world.embeddings, np.arange(n), 21)[:, 1:]
    out.mkdir()
    cfg = ExperimentConfig(serving=ServingConfig(policy="i2i", k=20, like_threshold=0.5, skip_artists=1))
    (out / experiment.CONFIG_FILE).write_text(experiment.config_yaml(cfg))
    write_user_recs({int(u): near[0] for u in world.users.user}, out / "recommendations.json")
    write_item_recs({t: near[t] for t in range(n)}, out / "item_recommendations.json")
    return out


@pytest.fixture(scope="module")
def world_dir():
    return ensure_smoke_world()


@pytest.fixture(scope="module")
def service(tmp_path_factory, world_dir):
    world = load_world(world_dir)
    export = export_folder(world, tmp_path_factory.mktemp("export") / "best")
    svc = ServiceProcess(["--control", "sticky_artist", "--treatment", str(export), "--experiment", EXPERIMENT,
                          "--world", str(world_dir), "--replicas", "2", "--cpus-per-replica", "0.5"],
                         tmp_path_factory.mktemp("serve") / "logs")
    svc.logged = 0  # /next and /last answered 200 so far: each must be one log line
    yield svc
    svc.kill()


def post(svc, message, user, body):
    status, payload = svc.request("POST", f"/{message}/{user}", body)
    svc.logged += status == 200
    return status, payload


def test_liveness(service):
    status, body = service.request("GET", "/")
    assert status == 200 and body["status"] == "ok" and body["experiment"] == EXPERIMENT
    assert body["arms"]["C"] == "sticky_artist" and body["arms"]["T1"].startswith("i2i(like ≥ 0.50, skip 1)")
    assert body["tracks"] == 2000


def listening_on(port):
    """Addresses with a listening TCP socket on ``port`` (Linux's socket table)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                ip = socket.inet_ntoa(raw[::-1]) if len(raw) == 4 else "ipv6:" + address
                found.add(ip)
    return found


def test_listens_on_loopback_only(service):
    assert listening_on(service.port) == {"127.0.0.1"}


def test_track_is_the_catalog_row(service, world_dir):
    row = load_world(world_dir).catalog.tracks.iloc[3]
    status, body = service.request("GET", "/track/3")
    assert status == 200 and body["track"] == 3 and body["artist"] == row[C.ARTIST] and body["pop"] == row[C.POP]
    # the catalog line in the course's schema (album and duration only where the catalog has them)
    assert body["genre"] == list(row[C.GENRE]) and all(isinstance(g, int) for g in body["genre"])
    assert {C.TRACK, C.ARTIST, C.TITLE, C.GENRE, C.POP} <= set(body) <= set(C.CATALOG_COLUMNS)


@pytest.mark.parametrize("path, status", [("/track/2000", 404), ("/track/-1", 404), ("/track/abc", 400),
                                          ("/nothing", 404), ("/next/1/2", 404)])
def test_unknown_tracks_and_routes(service, path, status):
    got, body = service.request("GET", path)
    assert got == status and isinstance(body["message"], str) and body["message"]


def test_next_then_last(service):
    status, body = post(service, "next", API_USER, b'{"track": 3, "time": 1.0}')
    assert status == 200 and set(body) == {"user", "track"} and body["user"] == API_USER
    assert isinstance(body["track"], int) and 0 <= body["track"] < 2000
    status, body = post(service, "next", API_USER, json.dumps({"track": body["track"], "time": 0.25}).encode())
    assert status == 200 and body["user"] == API_USER
    status, body = post(service, "last", API_USER, json.dumps({"track": body["track"], "time": 0.0}).encode())
    assert (status, body) == (200, {"user": API_USER})


@pytest.mark.parametrize("body", BAD_BODIES)
@pytest.mark.parametrize("message", ["next", "last"])
def test_a_malformed_body_is_a_400_with_a_message(service, message, body):
    status, payload = post(service, message, API_USER + 1, body)
    assert status == 400 and set(payload) == {"message"} and len(payload["message"]) > 10


@pytest.mark.parametrize("user", ["abc", "1.5", "99999999999999999999", "%20"])
def test_a_user_that_is_not_an_integer_is_a_400(service, user):
    status, payload = post(service, "next", user, b'{"track": 3, "time": 1.0}')
    assert status == 400 and "user must be an integer" in payload["message"]


def test_wrong_method_is_a_405(service):
    status, payload = service.request("GET", "/next/5")
    assert status == 405 and "POST" in payload["message"]


def test_load_loses_no_log_line_and_keeps_each_user_on_one_replica(service, world_dir):
    world = load_world(world_dir)
    before = service.logged_events()
    result = drive(world, DriveConfig(service.url, sessions=300, concurrency=8, seed=5))
    service.logged += result.requests
    print(f"\nload test (2 replicas, 8 concurrent, loopback): {result.summary()}")
    assert service.logged_events() - before == result.requests  # every answered request is on disk
    assert result.requests == result.sessions[C.TRACKS].sum()  # one request per track played
    events = read_logs(service.log_dir)
    events = events[events[C.USER] < API_USER]
    # the service's log says what the client saw, user by user: time listened and requests
    logged = sessionize(events, EXPERIMENT).groupby(C.USER)[[C.TIME, C.TRACKS]].sum()
    seen = result.sessions.groupby(C.USER)[[C.TIME, C.TRACKS]].sum()
    pd.testing.assert_frame_equal(logged.sort_index(), seen.sort_index(), check_dtype=False, atol=1e-9)
    # each user's requests reached one replica (session state lives there), and both replicas served
    replica_of = {}
    for path in service.log_dir.glob("*/data.json"):
        for user in {json.loads(line)[C.USER] for line in path.read_text().splitlines()}:
            assert replica_of.setdefault(user, path.parent.name) == path.parent.name, f"user {user} moved"
    assert len(set(replica_of.values())) == 2
    # botify's assignment: about half the users in each arm, and every event carries its arm
    arms = Counter(d[EXPERIMENT] for d in events.drop_duplicates(C.USER)[C.EXPERIMENTS])
    assert set(arms) == {"C", "T1"} and min(arms.values()) > 0.35 * sum(arms.values())


def test_sigterm_stops_cleanly_with_logs_flushed(service):
    code, output = service.stop(signal.SIGTERM)
    assert code == 0, output[-3000:]
    assert "SIGTERM: stopping" in output and "Traceback" not in output
    assert f"stopped; {service.logged} events logged" in output
    assert service.logged_events() == service.logged
    with pytest.raises(OSError):
        service.request("GET", "/")  # nothing listens any more


@pytest.mark.parametrize("argv, message", [
    ([], "give EXPERIMENT_DIR, or --control and --treatment"),
    (["--control", "sticky_artist"], "needs --control and at least one --treatment"),
    (["no/such/folder"], "no such folder"),
    (["--control", "sticky_artist", "--treatment", "oracle"], "cannot be served"),
    (["--control", "sticky_artist", "--treatment", "nonsense"], "unknown policy 'nonsense'"),
    (["--control", "sticky_artist", "--treatment", "random", "--treatment", "toppop", "--trial", "x"], "ambiguous"),
    (["random", "--experiment", "x"], "use it with --control"),
    (["random", "--port", "0"], "--port must be in 1..65535"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, world_dir, argv, message):
    port = [] if "--port" in argv else ["--port", str(free_port())]  # 5001 may be taken on this machine
    assert serve_main([*argv, *port, "--world", str(world_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_log_dir_in_use_is_refused(tmp_path, capsys, world_dir):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "data.json").write_text("{}\n")
    assert serve_main(["random", "--world", str(world_dir), "--log-dir", str(tmp_path),
                       "--port", str(free_port())]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "old" / "data.json").read_text() == "{}\n"  # untouched


def test_a_port_in_use_is_refused_before_ray_starts(capsys, world_dir):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert serve_main(["random", "--world", str(world_dir), "--port", str(port)]) == 2
    assert f"--port {port}: cannot listen there (Address already in use)" in capsys.readouterr().err


def test_only_loopback_listens_without_a_warning():
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    assert "0.0.0.0" in host_warning("0.0.0.0") and "anyone who can reach it" in host_warning("0.0.0.0")


def test_serve_gets_patient_proxy_checks_unless_the_environment_sets_its_own(monkeypatch):
    from search import cluster, serve as serve_module

    seen = {}
    monkeypatch.setattr(cluster, "start", lambda *a, **k: seen.update(
        {key: os.environ.get(key) for key in serve_module.PROXY_PATIENCE_S}))
    monkeypatch.setattr(serve_module.serve, "start", lambda **k: None)
    monkeypatch.setattr(serve_module, "deploy", lambda *a: None)
    monkeypatch.delenv("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", raising=False)
    monkeypatch.setenv("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "7")
    serve_module.start(config=None)
    assert seen == {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "7"}
