import json

import numpy as np
import pytest
import torch

from model.checkpoint import data_maps, load_checkpoint, save_checkpoint
from model.infer import (item_embeddings, item_recommendations, ivf_cells, recommend, top_k_l2, user_embeddings,
                         write_item_embeddings)
from sim_bridge.contract.recs import write_user_recs
from model.train import train


@pytest.fixture(scope="module")
def trained(data, tiny_cfg):
    return train(tiny_cfg, data, device="cpu").model


def test_top_k_l2_exact():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(20, 4)).astype(np.float32), rng.normal(size=(50, 4)).astype(np.float32)
    d = ((users[:, None] - items[None]) ** 2).sum(-1)
    assert np.array_equal(top_k_l2(users, items, 5), np.argsort(d, axis=1, kind="stable")[:, :5])
    assert top_k_l2(users, items, 100).shape == (20, 50)  # k capped at the item count


def test_top_k_l2_approximate_finds_most_neighbours_and_is_seeded():
    """IVF lists on clustered points: most of the exact top 10 (recall derived below), the same
    lists on a second call, and exact lists once every cell is probed."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(40, 8))
    items = (centres[rng.integers(0, 40, 4000)] + 0.3 * rng.normal(size=(4000, 8))).astype(np.float32)
    exact, approx = top_k_l2(items, items, 10), top_k_l2(items, items, 10, nprobe=8)
    recall = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(exact, approx)])
    assert ivf_cells(4000) == 102 and recall > 0.9
    assert np.array_equal(approx, top_k_l2(items, items, 10, nprobe=8))
    assert np.array_equal(top_k_l2(items, items, 10, nprobe=ivf_cells(4000)), exact)  # all cells: flat


def test_approximate_item_lists_hold_only_kept_tracks(trained, data):
    lists = item_recommendations(trained, data, k=20, device="cpu", nprobe=1)
    assert sorted(lists) == data.track_ids.tolist()
    for track, others in lists.items():
        assert track not in others and np.isin(others, data.track_ids).all() and len(others) <= 20


def test_recommend_every_user_with_history(trained, data):
    recs = recommend(trained, data, k=10, device="cpu")
    assert sorted(recs) == data.user_ids.tolist()
    for tracks in recs.values():
        assert tracks.shape == (10,) and len(set(tracks.tolist())) == 10
        assert np.isin(tracks, data.track_ids).all()


def test_checkpoint_round_trip(trained, data, tiny_cfg, tmp_path):
    save_checkpoint(tmp_path / "c.pt", trained, tiny_cfg, data_maps(data))
    model, cfg, maps = load_checkpoint(tmp_path / "c.pt")
    assert cfg == tiny_cfg
    assert np.array_equal(maps["track_ids"], data.track_ids) and np.array_equal(maps["history"], data.history)
    assert np.array_equal(item_embeddings(model, data, "cpu"), item_embeddings(trained, data, "cpu"))
    assert np.array_equal(user_embeddings(model, data, "cpu"), user_embeddings(trained, data, "cpu"))
    raw = torch.load(tmp_path / "c.pt", weights_only=True)  # plain types only
    assert set(raw) == {"format", "state_dict", "config", "dims", "maps"}


def test_export_formats(trained, data, tmp_path):
    recs = recommend(trained, data, k=5, device="cpu")
    write_user_recs(recs, tmp_path / "recs.json")
    lines = [json.loads(x) for x in (tmp_path / "recs.json").read_text().splitlines()]
    assert [x["user"] for x in lines] == sorted(recs)
    assert lines[0]["tracks"] == recs[lines[0]["user"]].tolist() and set(lines[0]) == {"user", "tracks"}
    emb = item_embeddings(trained, data, "cpu")
    write_item_embeddings(tmp_path, emb, data.track_ids)
    assert np.array_equal(np.load(tmp_path / "item_embeddings.npy"), emb)
    assert np.load(tmp_path / "item_ids.npy").tolist() == data.track_ids.tolist()
    assert emb.dtype == np.float32 and emb.shape == (data.n_items, 8)


def test_item_recommendations_are_nearest_other_items(data, tiny_cfg):
    from model.infer import item_embeddings, item_recommendations

    model = train(tiny_cfg, data, device="cpu").model
    lists = item_recommendations(model, data, k=3, device="cpu")
    emb = item_embeddings(model, data, device="cpu")
    assert set(lists) == set(data.track_ids.tolist())
    i = 0
    dist = ((emb - emb[i]) ** 2).sum(1)
    dist[i] = np.inf
    expected = data.track_ids[np.argsort(dist, kind="stable")[:3]]
    got = lists[int(data.track_ids[i])]
    assert int(data.track_ids[i]) not in got
    np.testing.assert_allclose(np.sort(dist[np.searchsorted(data.track_ids, got)]),
                               np.sort(dist[np.searchsorted(data.track_ids, expected)]), rtol=1e-5)


def test_serving_config_rejects_unknown_policy():
    from sim_bridge.contract.files import ConfigError, with_overrides
    from model.config import ExperimentConfig

    with pytest.raises(ConfigError, match="serving.policy"):
        with_overrides(ExperimentConfig(), {"serving.policy": "telepathy"})
