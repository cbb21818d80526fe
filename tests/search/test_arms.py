"""What a service arm serves: a search experiment's best (or chosen) trial, an export folder, a policy."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from model.config import ExperimentConfig
from sim_bridge.contract.recs import ServingConfig
from search import artifacts
from search.arms import ArmError, build_policy, resolve_arm, resolve_world
from sim_bridge.contract.files import load_yaml
from sim_bridge.defaults import SMOKE_WORLD_CONFIG
from sim_bridge.policies import Indexed, ItemToItem, StickyArtist
from sim_bridge.worldgen import WorldGenConfig, generate_world


@pytest.fixture(scope="module")
def catalog():
    return generate_world(load_yaml(SMOKE_WORLD_CONFIG, WorldGenConfig)).catalog


def checkpoint(folder, policy, like=0.5):
    """A trial checkpoint folder as the trainable writes it (lists as .npz)."""
    folder.mkdir(parents=True)
    cfg = ExperimentConfig(serving=ServingConfig(policy=policy, like_threshold=like, skip_artists=2))
    (folder / artifacts.CONFIG_FILE).write_text(artifacts.config_yaml(cfg))
    artifacts._save_lists(folder / artifacts.RECS_FILE, {7: np.array([1, 2, 3])})
    if policy == "i2i":
        artifacts._save_lists(folder / artifacts.ITEM_RECS_FILE, {t: np.array([t + 1, t + 2]) for t in range(10)})
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
