import json

import numpy as np
import pytest
import torch

from model.checkpoint import data_maps, load_checkpoint, save_checkpoint
from model.infer import (BLAS_FROM_QUERIES, ItemNeighbours, flat_search, item_embeddings, item_recommendations,
                         recommend, top_k_l2, user_embeddings, write_item_embeddings)
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


def test_flat_search_is_exact_on_both_sides_of_its_blas_switch():
    """Fewer than BLAS_FROM_QUERIES queries are scanned one by one, more by one matrix product:
    both give each query's nearest items by brute force (distances here are far from ties)."""
    import faiss

    rng = np.random.default_rng(5)
    items = rng.normal(size=(300, 6)).astype(np.float32)
    index = faiss.IndexFlatL2(6)
    index.add(items)
    for n in (BLAS_FROM_QUERIES - 1, BLAS_FROM_QUERIES, 4 * BLAS_FROM_QUERIES):
        queries = rng.normal(size=(n, 6)).astype(np.float32)
        d = ((queries[:, None].astype(np.float64) - items[None]) ** 2).sum(-1)
        dist, rows = flat_search(index, queries, 7)
        assert np.array_equal(rows, np.argsort(d, axis=1, kind="stable")[:, :7])
        assert np.allclose(dist, np.sort(d, axis=1)[:, :7], rtol=1e-4, atol=1e-4)
    assert faiss.cvar.distance_compute_blas_threshold == BLAS_FROM_QUERIES * 6  # the switch it set


def test_item_neighbours_computes_a_list_when_first_read_and_keeps_it():
    """Lists read in small and large batches, in any order, equal the nearest other tracks by
    brute force; a track without an embedding reads -1; only the tracks read are computed until
    to_dict computes the rest; a truncated view shares what was computed."""
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(600, 8)).astype(np.float32)
    ids = np.sort(rng.choice(1000, size=600, replace=False))  # catalog of 1000, 400 without an embedding
    lists = ItemNeighbours(emb, ids, 1000, k=10)
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    expected = ids[np.argsort(d, axis=1, kind="stable")[:, :10]]  # [600, 10]
    order = rng.permutation(600)
    first, rest = ids[order[:5]], ids[order[5:300]]
    assert np.array_equal(lists[first], expected[order[:5]])  # a batch smaller than faiss's BLAS threshold
    assert np.array_equal(lists[rest.reshape(-1, 5)], expected[order[5:300]].reshape(-1, 5, 10))  # 2-D reads
    assert lists.computed == 300
    missing = np.setdiff1d(np.arange(1000), ids)[:3]
    assert (lists[missing] == -1).all() and lists.shape == (1000, 10)
    view = lists.truncated(4)
    assert view.shape == (1000, 4) and np.array_equal(view[first], expected[order[:5], :4])
    whole = view.to_dict()
    assert lists.computed == 600 and sorted(whole) == ids.tolist()
    assert all(np.array_equal(whole[t], expected[i, :4]) for i, t in enumerate(ids))


def test_item_neighbours_read_as_any_order_equal_the_full_lists(trained, data):
    lists = ItemNeighbours.of(trained, data, data.n_tracks, k=20, device="cpu")
    full = item_recommendations(trained, data, k=20, device="cpu")
    for track in np.random.default_rng(0).permutation(data.track_ids)[:50]:  # one at a time
        assert np.array_equal(lists[np.array([track])][0], full[int(track)])
    assert set(lists.to_dict()) == set(full)
    assert all(np.array_equal(v, full[t]) for t, v in lists.to_dict().items())


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
    assert np.array_equal(maps["track_ids"], data.track_ids) and np.array_equal(maps["history"], data.serving_history)
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
