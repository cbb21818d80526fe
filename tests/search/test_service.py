"""search.service: botify's API without the transport (answers, botify's assignment, logs sim_bridge
reads) and what each arm serves (a search experiment's best or chosen trial, an export, a policy)."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from model.config import ExperimentConfig
from sim_bridge.contract.recs import ServingConfig
from search import experiment as layout
from search.service import ArmError, BotifyService, ServiceConfig, build_policy, resolve_arm, resolve_world
from sim_bridge.contract import columns as C
from sim_bridge.abtest import assign
from sim_bridge.contract.files import load_yaml
from sim_bridge.defaults import SMOKE_WORLD_CONFIG, ensure_smoke_world
from sim_bridge.contract.logs import read_logs
from sim_bridge.policies import Indexed, ItemToItem, StickyArtist
from sim_bridge.worldgen_v1 import WorldGenConfig, generate_world


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


# ---------------------------------------------------------------- arms: what each arm serves


@pytest.fixture(scope="module")
def catalog():
    return generate_world(load_yaml(SMOKE_WORLD_CONFIG, WorldGenConfig)).catalog


def checkpoint(folder, policy, like=0.5):
    """A trial checkpoint folder as the trainable writes it (lists as .npz)."""
    folder.mkdir(parents=True)
    cfg = ExperimentConfig(serving=ServingConfig(policy=policy, like_threshold=like, skip_artists=2))
    (folder / layout.CONFIG_FILE).write_text(layout.config_yaml(cfg))
    layout._save_lists(folder / layout.RECS_FILE, {7: np.array([1, 2, 3])})
    if policy == "i2i":
        layout._save_lists(folder / layout.ITEM_RECS_FILE, {t: np.array([t + 1, t + 2]) for t in range(10)})
    return str(folder)


@pytest.fixture
def experiment(tmp_path):
    """A finished search: trial a (i2i, best score), b (indexed), c (stopped, no checkpoint)."""
    exp = tmp_path / "runs" / "exp"
    exp.mkdir(parents=True)
    pd.DataFrame({
        "trial_id": ["a", "b", "c"], "status": ["finished", "finished", "stopped"],
        "score": [12.0, 3.0, np.nan],
        "checkpoint": [checkpoint(exp / "a", "i2i", like=0.7), checkpoint(exp / "b", "indexed"), None],
    }).to_parquet(exp / "trials.parquet")
    (exp / "search_run.json").write_text(json.dumps({"objective": "score", "world": str(tmp_path)}))
    return exp


def test_an_experiment_serves_its_best_trial_with_its_serving_settings(experiment, catalog):
    arm = resolve_arm(str(experiment))
    assert arm.label == "i2i(like ≥ 0.70, skip 2) of trial a" and arm.world == str(experiment.parent.parent)
    policy = build_policy(arm, catalog)
    assert isinstance(policy, ItemToItem) and policy.like_threshold == 0.7 and policy.skip_artists == 2
    assert list(policy.lists[4, :2]) == [5, 6]


def test_trial_picks_another_trial(experiment, catalog):
    policy = build_policy(resolve_arm(str(experiment), trial="b"), catalog)
    assert isinstance(policy, Indexed) and list(policy.lists.users) == [7]


@pytest.mark.parametrize("trial, message", [("zz", "no trial 'zz'"), ("c", "has no checkpoint")])
def test_a_trial_that_cannot_be_served(experiment, trial, message):
    with pytest.raises(ArmError, match=message):
        resolve_arm(str(experiment), trial=trial)


def test_policy_specs_and_refusals(tmp_path, catalog):
    assert isinstance(build_policy(resolve_arm("sticky_artist"), catalog), StickyArtist)
    with pytest.raises(ArmError, match="hidden truth"):
        resolve_arm("oracle")
    with pytest.raises(ArmError, match="no such folder"):
        resolve_arm(str(tmp_path / "gone"))
    with pytest.raises(ArmError, match="expected a search experiment or an export folder"):
        resolve_arm(str(tmp_path))


def test_the_world_is_the_searchs_unless_told(experiment, tmp_path):
    arm = resolve_arm(str(experiment))
    assert resolve_world([arm], None) == (tmp_path, "the search's world")
    assert resolve_world([arm], tmp_path / "other") == (tmp_path / "other", "--world")
    other = dataclasses.replace(arm, world=str(tmp_path / "elsewhere"))
    with pytest.raises(ArmError, match="different worlds"):
        resolve_world([arm, other], None)
