"""A trial's serving config picks the sim_bridge policy; i2i lists survive the checkpoint."""
import numpy as np
import pytest

from sim_bridge.contract.recs import ServingConfig
from sim_bridge.policies import Indexed, ItemToItem, Sequential, policy_spec, serving_policy

from search import artifacts


@pytest.fixture(scope="module")
def catalog():
    from sim_bridge.contract.files import load_yaml
    from sim_bridge.defaults import SMOKE_WORLD_CONFIG
    from sim_bridge.worldgen import WorldGenConfig, generate_world

    return generate_world(load_yaml(SMOKE_WORLD_CONFIG, WorldGenConfig)).catalog


def test_each_serving_choice_builds_its_policy(catalog):
    users, items = {1: np.array([3, 4])}, {3: np.array([5, 6])}
    assert isinstance(serving_policy(ServingConfig("indexed"), catalog, users), Indexed)
    assert isinstance(serving_policy(ServingConfig("sequential"), catalog, users), Sequential)
    i2i = serving_policy(ServingConfig("i2i", like_threshold=0.7, skip_artists=2), catalog, users, items)
    assert isinstance(i2i, ItemToItem) and (i2i.like_threshold, i2i.skip_artists) == (0.7, 2)
    assert policy_spec(ServingConfig("i2i", like_threshold=0.7, skip_artists=2)) == "i2i(like ≥ 0.70, skip 2)"


def test_i2i_without_item_lists_is_a_clear_error(catalog):
    with pytest.raises(ValueError, match="needs per-track lists"):
        serving_policy(ServingConfig("i2i"), catalog, {1: np.array([3])})


def test_ragged_lists_round_trip_through_the_trial_folder(tmp_path):
    lists = {7: np.array([1, 2, 3]), 9: np.array([4])}
    artifacts._save_lists(tmp_path / artifacts.ITEM_RECS_FILE, lists)
    back = artifacts.load_item_recs(tmp_path)
    assert back.keys() == lists.keys() and all((back[k] == lists[k]).all() for k in lists)
    assert artifacts.load_item_recs(tmp_path / "nowhere") is None


def test_botify_rules_serve_the_item_lists(catalog):
    from sim_bridge.policies import BotifyI2I, Contextual

    users, items = {1: np.array([3, 4])}, {3: np.array([5, 6])}
    contextual = serving_policy(ServingConfig("contextual"), catalog, users, items)
    botify_i2i = serving_policy(ServingConfig("botify_i2i"), catalog, users, items)
    assert isinstance(contextual, Contextual) and contextual.lists[3, :2].tolist() == [5, 6]
    assert isinstance(botify_i2i, BotifyI2I) and botify_i2i.lists[3, :2].tolist() == [5, 6]
    assert ServingConfig("contextual").needs_item_lists and not ServingConfig("indexed").needs_item_lists
    with pytest.raises(ValueError, match="'botify_i2i' needs per-track lists"):
        serving_policy(ServingConfig("botify_i2i"), catalog, users)
