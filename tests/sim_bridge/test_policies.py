"""Each baseline policy recommends what docs/listener.md says, and only from public data."""
import numpy as np
import pytest

from sim_bridge.policies import Indexed, Oracle, Random, Sequential, StickyArtist, TopPop, make_policy

from sim_bridge.simulator import Simulator


def events(world, policy, n=300, seed=1):
    return Simulator(world).run(policy, n, seed=seed, record_events=True).events


def recommended(ev):
    """(previous track, recommendation) pairs of every "next" event."""
    nxt = ev[ev["recommendation"] >= 0]
    return nxt["track"].to_numpy(), nxt["recommendation"].to_numpy()


def test_sticky_artist_stays_with_the_previous_artist(smoke_world):
    artist = smoke_world.catalog.artist_codes
    prev, rec = recommended(events(smoke_world, StickyArtist(smoke_world.catalog)))
    assert (artist[prev] == artist[rec]).all()
    assert (prev == rec).any()  # the previous track itself is a candidate (the seed's control)


def test_sticky_artist_exclusive_never_repeats_the_previous_track(smoke_world):
    artist = smoke_world.catalog.artist_codes
    sizes = np.bincount(artist)
    prev, rec = recommended(events(smoke_world, StickyArtist(smoke_world.catalog, exclude_previous=True)))
    multi = sizes[artist[prev]] > 1
    assert (prev[multi] != rec[multi]).all() and (artist[prev[multi]] == artist[rec[multi]]).all()


def test_toppop_serves_the_hundred_most_popular(smoke_world):
    pop = smoke_world.catalog.pop
    _, rec = recommended(events(smoke_world, TopPop(smoke_world.catalog)))
    assert pop[rec].min() >= np.sort(pop)[-100]
    assert len(np.unique(rec)) > 90


def test_indexed_uses_the_list_and_falls_back_to_random(smoke_world):
    lists = {0: np.array([7, 8, 9])}
    ev = events(smoke_world, Indexed(lists, smoke_world.catalog.n_tracks), n=2000)
    nxt = ev[ev["recommendation"] >= 0]
    mine = nxt[nxt["user"] == 0]["recommendation"]
    assert len(mine) > 0 and set(mine) <= {7, 8, 9}
    assert nxt[nxt["user"] != 0]["recommendation"].nunique() > 100


def test_sequential_walks_the_list(smoke_world):
    user = int(smoke_world.users.user[0])
    lists = {user: np.array([5, 6, 7])}
    ev = events(smoke_world, Sequential(lists, smoke_world.catalog.n_tracks), n=2000)
    nxt = ev[(ev["recommendation"] >= 0) & (ev["user"] == user)]
    for prev, rec in zip(nxt["track"], nxt["recommendation"]):
        expected = {5: 6, 6: 7, 7: 5}.get(prev, 5)  # off the list → its first entry
        assert rec == expected


def test_oracle_is_the_ceiling(smoke_world):
    sim = Simulator(smoke_world)
    oracle = sim.run(Oracle(smoke_world), 1000, seed=2).sessions["time"].mean()
    sticky = sim.run(StickyArtist(smoke_world.catalog), 1000, seed=2).sessions["time"].mean()
    assert oracle > 2 * sticky


def test_make_policy_reads_recommendation_files(tmp_path, smoke_world):
    from sim_bridge.contract.recs import write_user_recs

    path = tmp_path / "recs.json"
    write_user_recs({0: np.array([3, 4])}, path)
    assert isinstance(make_policy(f"indexed:{path}", smoke_world), Indexed)
    assert isinstance(make_policy(f"sequential:{path}", smoke_world), Sequential)
    assert isinstance(make_policy("random", smoke_world), Random)


def test_make_policy_i2i_takes_the_serving_settings(tmp_path, smoke_world):
    from sim_bridge.contract.recs import write_item_recs
    from sim_bridge.policies import ItemToItem

    path = tmp_path / "items.json"
    write_item_recs({0: np.array([3, 4])}, path)
    plain = make_policy(f"i2i:{path}", smoke_world)
    tuned = make_policy(f"i2i:{path}:0.38:4", smoke_world)
    assert isinstance(tuned, ItemToItem)
    assert (plain.like_threshold, plain.skip_artists) == (0.5, 1)
    assert (tuned.like_threshold, tuned.skip_artists) == (0.38, 4)
    with pytest.raises(ValueError, match=r"i2i:FILE:LIKE:SKIP .*SKIP='x'"):
        make_policy(f"i2i:{path}:0.4:x", smoke_world)


def test_unknown_policy_is_a_clear_error(smoke_world):
    with pytest.raises(ValueError, match="unknown policy 'stiky'"):
        make_policy("stiky", smoke_world)


def test_recommendations_outside_the_catalog_are_rejected(smoke_world):
    with pytest.raises(ValueError, match="outside the catalog"):
        Indexed({0: np.array([1, 99_999])}, smoke_world.catalog.n_tracks)


def test_indexed_without_any_lists_is_random(smoke_world):
    _, rec = recommended(events(smoke_world, Indexed({}, smoke_world.catalog.n_tracks)))
    assert len(np.unique(rec)) > 500  # uniform over 2,000 tracks


def test_catalog_item_lists_are_the_nearest_by_cosine_without_self():
    from types import SimpleNamespace

    from sim_bridge.policies import catalog_item_lists

    emb = np.array([[1, 0], [9, 1], [0, 1], [1, 9], [-1, 0]], dtype=np.float32)  # lengths differ
    lists = catalog_item_lists(SimpleNamespace(embeddings=emb), k=2)
    # cosines with track 0: 1 → 0.994, 3 → 0.110, 2 → 0, 4 → −1
    assert lists[0].tolist() == [1, 3]
    assert lists[2].tolist() == [3, 1]  # with track 2: 3 → 0.994, 1 → 0.110
