"""The listener model over HTTP: an A/B driven against the running service agrees with the
in-process simulator's A/B of the same policies — session by session for a deterministic policy,
within the confidence intervals for the others. One service for the module, stopped by SIGINT."""
import signal
import subprocess
import sys

import numpy as np
import pytest

from sim_bridge import abtest
from sim_bridge.contract import columns as C
from sim_bridge.defaults import ensure_smoke_world
from sim_bridge.drive import DriveConfig, DriveError, drive
from sim_bridge.abtest import simulate_experiment
from sim_bridge.contract.logs import read_logs
from sim_bridge.policy_specs import make_policy
from sim_bridge.contract.recs import write_item_recs, write_user_recs
from sim_bridge.simulator import Simulator, nearest_by_inner_product
from sim_bridge.world import load_world

from tests.service_process import REPO, ServiceProcess, free_port
from tests.sim_bridge.worlds import tiny_world

EXPERIMENT = "drive-test"
SESSIONS, SEED = 400, 11


@pytest.fixture(scope="module")
def world():
    return load_world(ensure_smoke_world())


@pytest.fixture(scope="module")
def arms(world, tmp_path_factory):
    """C: sticky_artist; T1: sequential (every user has a list: no random draw); T2: i2i."""
    folder = tmp_path_factory.mktemp("lists")
    n = world.catalog.n_tracks
    near = nearest_by_inner_product(world.embeddings, np.arange(n), 21)[:, 1:]
    first_interest = world.users.interests[:, 0]
    write_user_recs({int(u): near[t] for u, t in zip(world.users.user, first_interest)}, folder / "users.json")
    write_item_recs({t: near[t] for t in range(n)}, folder / "items.json")
    return ["sticky_artist", f"sequential:{folder / 'users.json'}", f"i2i:{folder / 'items.json'}:0.5:1"]


@pytest.fixture(scope="module")
def service(world, arms, tmp_path_factory):
    args = ["--control", arms[0], "--treatment", arms[1], "--treatment", arms[2], "--experiment", EXPERIMENT,
            "--world", str(ensure_smoke_world())]
    svc = ServiceProcess(args, tmp_path_factory.mktemp("drive") / "logs")
    yield svc
    svc.kill()


@pytest.fixture(scope="module")
def driven(world, service):
    return drive(world, DriveConfig(service.url, SESSIONS, concurrency=8, seed=SEED))


@pytest.fixture(scope="module")
def in_process(world, arms):
    policies = [make_policy(spec, world) for spec in arms]
    return simulate_experiment(Simulator(world), policies, EXPERIMENT, SESSIONS, SEED)


def test_same_listeners_and_exactly_the_same_sessions_for_a_deterministic_policy(driven, in_process):
    sim = in_process.sessions.sort_values(C.SESSION, ignore_index=True)
    http = driven.sessions
    np.testing.assert_array_equal(http[C.USER], sim[C.USER])  # the same session plan
    det = (sim[C.ARM] == "T1").to_numpy()
    assert det.sum() > 50
    np.testing.assert_array_equal(http[C.TRACKS][det], sim[C.TRACKS][det])
    np.testing.assert_array_equal(http[C.TIME][det], sim[C.TIME][det])
    assert driven.requests == http[C.TRACKS].sum()


def test_http_ab_agrees_with_the_in_process_ab(driven, in_process, service):
    http = abtest.analyze(read_logs(service.log_dir), EXPERIMENT)
    sim = abtest.ab_table(abtest.user_metrics(in_process.sessions))
    metric = C.MEAN_TIME_PER_SESSION
    h = http[http["metric"] == metric].set_index("model")
    s = sim[sim["metric"] == metric].set_index("model")
    print(f"\nHTTP A/B:\n{abtest.to_markdown(http)}\nin-process A/B:\n{abtest.to_markdown(sim)}")
    for arm in ("T1", "T2"):  # each estimate lies in the other's 95% CI
        assert s.loc[arm, "lower"] <= h.loc[arm, "effect"] <= s.loc[arm, "upper"], arm
        assert h.loc[arm, "lower"] <= s.loc[arm, "effect"] <= h.loc[arm, "upper"], arm
    # the deterministic arm's users saw the very same sessions: the same user-level mean
    assert h.loc["T1", "treatment_mean"] == pytest.approx(s.loc["T1", "treatment_mean"], rel=1e-12)


def test_refuses_a_service_with_another_catalog(service):
    with pytest.raises(DriveError, match="does not serve this world's catalog"):
        drive(tiny_world(), DriveConfig(service.url, 3))


def test_cli_drives_and_writes_the_client_table(service, tmp_path):
    out = tmp_path / "sessions.csv"
    proc = subprocess.run([sys.executable, "-m", "sim_bridge", "drive", "--url", service.url, "--world",
                           str(ensure_smoke_world()), "--sessions", "30", "--concurrency", "3", "--seed", "2",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "30 sessions" in proc.stdout and "requests/s" in proc.stdout and "p99" in proc.stdout
    assert len(out.read_text().splitlines()) == 31


def test_cli_without_a_service_is_one_line_and_exit_2():
    url = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.run([sys.executable, "-m", "sim_bridge", "drive", "--url", url, "--world",
                           str(ensure_smoke_world()), "--sessions", "3"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("error: GET") and "is the service running?" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sigint_stops_the_service_with_every_event_on_disk(service, driven):
    answered = service.logged_events()
    code, output = service.stop(signal.SIGINT)
    assert code == 0 and "SIGINT: stopping" in output and "Traceback" not in output
    assert f"stopped; {answered} events logged" in output
    assert answered >= driven.requests + 30 * 2  # the drive above, and at least 2 per CLI session
