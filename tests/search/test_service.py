"""botify's API without the transport: answers, botify's assignment, and logs sim_bridge reads."""
import json

import numpy as np
import pytest

from search.arms import resolve_arm
from search.service import BotifyService, ServiceConfig
from sim_bridge.contract import columns as C
from sim_bridge.abtest import assign
from sim_bridge.defaults import ensure_smoke_world
from sim_bridge.contract.logs import read_logs


def service(tmp_path, arms, experiment=None):
    config = ServiceConfig(tuple(resolve_arm(a) for a in arms), str(ensure_smoke_world()), str(tmp_path),
                           experiment)
    return BotifyService(config, replica="r0")


def body(track, time):
    return json.dumps({"track": track, "time": time}).encode()


def test_events_are_botify_logs_with_each_users_arm(tmp_path):
    svc = service(tmp_path, ["sticky_artist", "random"], experiment="exp")
    users = np.arange(40)
    for user in users:
        status, out = svc.handle("POST", f"/next/{user}", body(5, 1.0))
        assert status == 200 and out["user"] == user
        assert svc.handle("POST", f"/last/{user}", body(out["track"], 0.3)) == (200, {"user": int(user)})
    svc.close()
    events = read_logs(tmp_path)
    assert list(events[C.MESSAGE]) == ["next", "last"] * 40
    assert list(events[C.USER]) == list(np.repeat(users, 2))
    assert events[C.RECOMMENDATION].isna().tolist() == [False, True] * 40
    assert list(events[C.TIME]) == [1.0, 0.3] * 40 and (events[C.LATENCY] > 0).all()
    logged = [d["exp"] for d in events[C.EXPERIMENTS][::2]]
    assert logged == list(assign(users, "exp", 2))  # botify's assignment
    assert set(logged) == {"C", "T1"}


def test_sticky_arm_recommends_the_previous_artist(tmp_path):
    svc = service(tmp_path, ["sticky_artist"])
    artists = svc.catalog.artist_codes
    for step in range(20):
        _, out = svc.handle("POST", "/next/9", body(11, 0.5))
        assert artists[out["track"]] == artists[11]
    svc.close()
    assert read_logs(tmp_path)[C.EXPERIMENTS].map(len).eq(0).all()  # one arm: no experiment


def test_sessions_are_per_user_and_reset_by_last(tmp_path):
    svc = service(tmp_path, ["sticky_artist"])
    svc.handle("POST", "/next/1", body(3, 1.0))
    svc.handle("POST", "/next/2", body(4, 1.0))
    svc.handle("POST", "/next/1", body(5, 0.5))
    assert svc.handle("GET", "/", b"")[1]["open_sessions"] == 2
    assert svc.sessions.batch.step[svc.sessions.slot_of[1]] == 1
    svc.handle("POST", "/last/1", body(5, 0.5))
    assert svc.handle("GET", "/", b"")[1]["open_sessions"] == 1 and 1 not in svc.sessions.slot_of


@pytest.mark.parametrize("method, path, data, status", [
    ("POST", "/next/1", b"{}", 400), ("POST", "/next/x", body(1, 1.0), 400), ("PUT", "/next/1", body(1, 1.0), 405),
    ("GET", "/track/2000", b"", 404), ("POST", "/", b"", 405), ("GET", "/tracks", b"", 404),
])
def test_refusals_are_logged_nowhere(tmp_path, method, path, data, status):
    svc = service(tmp_path, ["sticky_artist"])
    got, out = svc.handle(method, path, data)
    svc.close()
    assert got == status and isinstance(out["message"], str)
    assert svc.events == 0 and svc.log_path.read_text() == ""
