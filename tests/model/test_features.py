import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog

from sim_bridge.contract.files import ConfigError

from model.features import FeatureConfig, build_training_data, mask_history
from model.train import train


def _hand_catalog():
    return Catalog(pd.DataFrame({C.TRACK: range(5), C.ARTIST: list("aabbc"), C.TITLE: list("vwxyz"),
                                 C.GENRE: ["rock", None, "pop|rock", "pop", "jazz"], C.POP: [10, 1, 5, 7, 3]}))


def _hand_events():
    # user 7: plays tracks 0,2,0,3 positive, 4 not; user 9: 2,3 positive
    rows = [(7, 0, 1.0, 1), (7, 2, 0.9, 2), (7, 0, 0.95, 3), (7, 3, 0.81, 4), (7, 4, 0.8, 5),
            (9, 2, 1.0, 1), (9, 3, 0.99, 2)]
    return pd.DataFrame(rows, columns=[C.USER, C.TRACK, C.TIME, C.TIMESTAMP])


def test_hand_built_logs():
    cfg = FeatureConfig(min_positives=2, history_len=2, n_negatives=2)
    d = build_training_data(_hand_events(), _hand_catalog(), cfg)
    # positives per track: 0→2, 2→2, 3→2, 4→0 (time 0.8 is not > 0.8)
    assert d.track_ids.tolist() == [0, 2, 3]
    assert d.user_ids.tolist() == [7, 9]
    # latest 2 unique positives, newest first, as id + 1
    assert d.history.tolist() == [[4, 1], [4, 3]]
    assert d.genre_ids.tolist() == [0, 1, 2]  # legacy names by sorted rank: jazz, pop, rock
    assert d.item_genres.tolist() == [[0, 0, 1], [0, 1, 1], [0, 1, 0]]
    assert d.item_pop.tolist() == [10, 5, 7]
    trip = np.concatenate([d.train, d.val, d.test])
    assert len(trip) == 6 * 2  # six positives of kept tracks × two negatives
    assert (trip[:, 1] != trip[:, 2]).all()


def test_split_sizes_seeded_and_picklable(data, events, catalog, tiny_cfg):
    n = len(data.train) + len(data.val) + len(data.test)
    assert len(data.val) == round(n * 0.1) and len(data.test) == round(n * 0.1)
    again = build_training_data(events, catalog, tiny_cfg.features)
    assert np.array_equal(again.train, data.train)
    back = pickle.loads(pickle.dumps(data))
    assert np.array_equal(back.history, data.history)
    other = build_training_data(events, catalog, FeatureConfig(n_negatives=3, seed=5))
    assert not np.array_equal(other.train, data.train)


def test_negatives_uniform_over_other_items(data):
    trip = np.concatenate([data.train, data.val, data.test])
    assert (trip[:, 1] != trip[:, 2]).all()
    counts = np.bincount(trip[:, 2], minlength=data.n_items)
    assert counts.min() > 0  # every kept item is drawn as a negative on this size


def test_pop_transforms(events, catalog):
    raw = build_training_data(events, catalog, FeatureConfig(pop_transform="raw"))
    std = build_training_data(events, catalog, FeatureConfig(pop_transform="standard"))
    assert np.allclose(std.item_pop.mean(), 0, atol=1e-5) and np.isclose(std.item_pop.std(), 1, atol=1e-3)
    assert np.allclose(np.log1p(raw.item_pop), build_training_data(
        events, catalog, FeatureConfig(pop_transform="log")).item_pop, rtol=1e-5)


def test_mask_history():
    h = np.array([[3, 5, 0], [5, 6, 7]])
    out = mask_history(h, np.array([5, 9]), np.array([0, 7]))
    assert out.tolist() == [[3, 0, 0], [5, 6, 0]]


def test_events_outside_catalog_rejected(catalog):
    ev = pd.DataFrame({C.USER: [1], C.TRACK: [10_000], C.TIME: [1.0], C.TIMESTAMP: [1]})
    with pytest.raises(ValueError, match="outside the catalog"):
        build_training_data(ev, catalog, FeatureConfig())


def _course_catalog(genre, pop):
    return Catalog(pd.DataFrame({C.TRACK: range(5), C.ARTIST: list("aabbc"), C.TITLE: list("vwxyz"),
                                 C.GENRE: genre, C.POP: pop}))


def test_genre_lists_are_multi_hot_over_int_ids_in_any_order():
    course = _course_catalog([[1, 47], [1], [47, 1], [149], [6, 1, 47]], [2.37, -0.63, -1.4, 0.3, 4.32])
    d = build_training_data(_hand_events(), course, FeatureConfig(min_positives=2, history_len=2, n_negatives=2))
    assert d.genre_ids.tolist() == [1, 6, 47, 149]  # one column per id seen in the catalog
    # kept tracks 0, 2, 3: [1, 47] and [47, 1] are one genre set; 47 is a column of its own
    assert d.item_genres.tolist() == [[1, 0, 1, 0], [1, 0, 1, 0], [0, 0, 0, 1]]
    assert d.item_pop.tolist() == pytest.approx([2.37, -1.4, 0.3])  # standardised pop fed as given


@pytest.mark.parametrize("transform", ["log", "standard"])
def test_count_transforms_refuse_a_standardised_pop(transform):
    course = _course_catalog([[1]] * 5, [2.37, -0.63, -1.4, 0.3, 4.32])
    with pytest.raises(ConfigError, match=f"pop_transform: '{transform}' is for play counts.*min -1.4"):
        build_training_data(_hand_events(), course, FeatureConfig(min_positives=2, pop_transform=transform))


def test_course_catalog_and_its_legacy_form_train_the_same_model(events, catalog, tiny_cfg):
    """The same catalog with genre id lists, and written the old way (names), trains identically."""
    ids = [tuple(sorted({3 * i + 1, (7 * i) % 50 + 1})) if i % 4 else (1,) for i in range(catalog.n_tracks)]
    course = Catalog(catalog.tracks.assign(**{C.GENRE: [list(g)[::-1] for g in ids]}))
    legacy = Catalog(catalog.tracks.assign(**{C.GENRE: ["|".join(f"genre_{i:03d}" for i in g) for g in ids]}))
    a = build_training_data(events, course, tiny_cfg.features)
    b = build_training_data(events, legacy, tiny_cfg.features)
    assert np.array_equal(a.item_genres, b.item_genres) and a.item_genres.sum() > len(a.track_ids)
    ma, mb = train(tiny_cfg, a, device="cpu").model.state_dict(), train(tiny_cfg, b, device="cpu").model.state_dict()
    assert ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma)


def _session_events():
    # user 7, session 1: 0 (artist a), 2 (b), 1 (a), 0 again, 3 (b) at 0.5 (not a positive), then "last";
    # session 2: 3 (b), 4 (c). User 9: 2 (b), 4 (c) in one open session. Kept tracks: 0..4 (min_positives 1).
    rows = [(7, 0, 1.0, 1, "next"), (7, 2, 0.9, 2, "next"), (7, 1, 0.95, 3, "next"), (7, 0, 0.99, 4, "next"),
            (7, 3, 0.5, 5, "last"), (7, 3, 0.85, 6, "next"), (7, 4, 0.9, 7, "last"),
            (9, 2, 1.0, 1, "next"), (9, 4, 0.97, 2, "next")]
    return pd.DataFrame(rows, columns=[C.USER, C.TRACK, C.TIME, C.TIMESTAMP, C.MESSAGE])


def _pairs(data):
    items = data.track_ids
    return sorted((int(items[a]), int(items[b]), round(float(t), 2)) for (a, b), t in zip(data.pairs, data.pair_time))


def test_session_pairs_within_a_window_of_positives_other_artists_only():
    catalog = _hand_catalog()
    one = build_training_data(_session_events(), catalog, FeatureConfig(min_positives=1, pair_window=1))
    # session 1's positives in order: 0, 2, 1 (0's replay is not a new play); 3 at 0.5 is not a positive.
    # window 1: 0→2, 2→1 (1 is artist a, 2 artist b); session 2: 3→4; user 9: 2→4
    assert _pairs(one) == [(0, 2, 0.9), (2, 1, 0.95), (2, 4, 0.97), (3, 4, 0.9)]
    two = build_training_data(_session_events(), catalog, FeatureConfig(min_positives=1, pair_window=2))
    # window 2 adds 0→1 in session 1: same artist (a), left out; nothing crosses a session's end
    assert _pairs(two) == _pairs(one)
    kept = build_training_data(_session_events(), catalog, FeatureConfig(min_positives=2, pair_window=2))
    # only tracks 0, 2, 4 have two positives: pairs among kept tracks only (0→2 and 2→4)
    assert _pairs(kept) == [(0, 2, 0.9), (2, 4, 0.97)]


def test_no_session_pairs_by_default_and_the_sessions_are_needed():
    data = build_training_data(_session_events(), _hand_catalog(), FeatureConfig(min_positives=1))
    assert data.pairs.shape == (0, 2) and data.pair_time.shape == (0,)
    with pytest.raises(ValueError, match="message"):
        build_training_data(_session_events().drop(columns=[C.MESSAGE]), _hand_catalog(),
                            FeatureConfig(min_positives=1, pair_window=3))
    with pytest.raises(ConfigError, match="features.pair_window"):
        FeatureConfig(pair_window=-1)


def _user_positives(events: pd.DataFrame, threshold: float) -> dict[int, np.ndarray]:
    """Each user's positive tracks in time order (the order features sorts them in)."""
    pos = events[events[C.TIME] > threshold].sort_values([C.USER, C.TIMESTAMP, C.TRACK], kind="stable")
    return {int(u): g[C.TRACK].to_numpy() for u, g in pos.groupby(C.USER)}


def test_time_split_holds_out_each_users_latest_positives(events, catalog):
    cfg = FeatureConfig(min_positives=1, n_negatives=2, split="time")
    d = build_training_data(events, catalog, cfg)
    n = cfg.n_negatives
    for u, tracks in _user_positives(events, cfg.positive_threshold).items():
        row = int(np.searchsorted(d.user_ids, u))
        n_test, n_val = int(len(tracks) * cfg.test_fraction), int(len(tracks) * cfg.val_fraction)
        cut_val, cut_test = len(tracks) - n_test - n_val, len(tracks) - n_test
        parts = {"train": tracks[:cut_val], "val": tracks[cut_val:cut_test], "test": tracks[cut_test:]}
        for name, expected in parts.items():
            trip = getattr(d, name)
            got = d.track_ids[trip[trip[:, 0] == row][::n, 1]]  # each positive once (n negatives each)
            assert got.tolist() == expected.tolist(), (u, name)
        # the triplets' history is the user's latest unique training positives only
        train_set = set((parts["train"] + 1).tolist())
        assert set(d.history[row][d.history[row] > 0].tolist()) <= train_set
    assert len(d.val) > 0 and len(d.test) > 0


def test_time_split_serves_from_every_positive_and_learns_cooccurrence_from_training_events(events, catalog):
    time_cfg = FeatureConfig(min_positives=1, split="time", pair_window=3, cooc_dim=4)
    d_time = build_training_data(events, catalog, time_cfg)
    d_rand = build_training_data(events, catalog, FeatureConfig(min_positives=1, pair_window=3, cooc_dim=4))
    assert np.array_equal(d_time.serving_history, d_rand.serving_history)
    assert np.array_equal(d_rand.history, d_rand.serving_history)  # the seminar's split: one history
    assert not np.array_equal(d_time.history, d_time.serving_history)
    # session pairs from the events before each user's first held-out positive: fewer, none new
    rand_pairs = set(map(tuple, d_rand.pairs.tolist()))
    time_pairs = set(map(tuple, d_time.pairs.tolist()))
    assert time_pairs < rand_pairs
    # with the random split nearly every validation (user, positive) is trained on; in time, far fewer
    def seen_share(d):
        train = set(map(tuple, d.train[:, :2].tolist()))
        return np.mean([tuple(t) in train for t in d.val[:, :2].tolist()])
    assert seen_share(d_rand) > 0.9 and seen_share(d_time) < seen_share(d_rand) - 0.3


def test_unknown_split_is_refused():
    with pytest.raises(ConfigError, match="features.split"):
        FeatureConfig(split="later")
