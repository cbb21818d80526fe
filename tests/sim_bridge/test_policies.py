"""Each policy recommends what docs/listener.md says, from public data only; one factory builds them."""
import numpy as np
import pytest

from sim_bridge.contract.recs import ServingConfig, write_item_recs
from sim_bridge.policies import (
    BotifyI2I,
    Contextual,
    Indexed,
    ItemToItem,
    Oracle,
    Random,
    Sequential,
    StickyArtist,
    TopPop,
    hidden_item_lists,
)
from sim_bridge.policy_specs import make_policy, policy_spec, reads_hidden_truth, serving_policy
from sim_bridge.reference import simulate_reference
from sim_bridge.simulator import SessionBatch, SimConfig, Simulator


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

    path = tmp_path / "items.json"
    write_item_recs({0: np.array([3, 4])}, path)
    plain = make_policy(f"i2i:{path}", smoke_world)
    tuned = make_policy(f"i2i:{path}:0.38:4", smoke_world)
    assert isinstance(tuned, ItemToItem)
    assert (plain.like_threshold, plain.skip_artists) == (0.5, 1)
    assert (tuned.like_threshold, tuned.skip_artists) == (0.38, 4)
    with pytest.raises(ValueError, match=r"i2i:FILE:LIKE:SKIP .*SKIP='x'"):
        make_policy(f"i2i:{path}:0.4:x", smoke_world)


def test_i2i_hidden_serves_the_hidden_neighbours_by_our_rule(smoke_world):
    policy = make_policy("i2i_hidden:5:0.9:3", smoke_world)
    assert isinstance(policy, ItemToItem) and (policy.like_threshold, policy.skip_artists) == (0.9, 3)
    lists = hidden_item_lists(smoke_world, k=5)
    assert all(np.array_equal(policy.lists[t], lists[t]) for t in (0, 7, 42))
    assert make_policy("i2i_hidden", smoke_world).lists.shape[1] == 200  # K 200 by default
    assert reads_hidden_truth("i2i_hidden:200") and not reads_hidden_truth("i2i:items.json")
    with pytest.raises(ValueError, match="expected i2i_hidden or i2i_hidden:N"):
        make_policy("i2i_hidden:0", smoke_world)


def test_unknown_policy_is_a_clear_error(smoke_world):
    with pytest.raises(ValueError, match="unknown policy 'stiky'"):
        make_policy("stiky", smoke_world)


def test_recommendations_outside_the_catalog_are_rejected(smoke_world):
    with pytest.raises(ValueError, match="outside the catalog"):
        Indexed({0: np.array([1, 99_999])}, smoke_world.catalog.n_tracks)


def test_indexed_without_any_lists_is_random(smoke_world):
    _, rec = recommended(events(smoke_world, Indexed({}, smoke_world.catalog.n_tracks)))
    assert len(np.unique(rec)) > 500  # uniform over 2,000 tracks


def test_hidden_item_lists_are_the_nearest_by_cosine_without_self():
    from types import SimpleNamespace

    emb = np.array([[1, 0], [9, 1], [0, 1], [1, 9], [-1, 0]], dtype=np.float32)  # lengths differ
    lists = hidden_item_lists(SimpleNamespace(embeddings=emb), k=2)
    # cosines with track 0: 1 → 0.994, 3 → 0.110, 2 → 0, 4 → −1
    assert lists[0].tolist() == [1, 3]
    assert lists[2].tolist() == [3, 1]  # with track 2: 3 → 0.994, 1 → 0.110


# --------------------------------------------------------------------------- ItemToItem (ours)
# Session-aware item-to-item serving: anchor on the last liked track, skip played tracks and the
# artists just played; per-track files load through make_policy.


def lists_by_artist_neighbours(world, width=20):
    rng = np.random.default_rng(0)
    return {t: rng.integers(0, world.catalog.n_tracks, width) for t in range(world.catalog.n_tracks)}


def test_recommendations_follow_the_anchor_list(smoke_world):
    lists = lists_by_artist_neighbours(smoke_world)
    policy = ItemToItem(lists, smoke_world.catalog, like_threshold=2.0, skip_artists=0)  # anchor: first track
    ev = Simulator(smoke_world).run(policy, 300, seed=1, record_events=True).events
    for _, session in ev.groupby("session"):
        first = session["track"].iloc[0]
        recs = session["recommendation"].to_numpy()[:-1]
        played = set([first])
        for rec in recs:
            options = [t for t in lists[first] if t not in played]
            if options:  # the first unplayed entry of the first track's list
                assert rec == options[0]
            played.add(rec)


def test_skips_the_artist_just_played(smoke_world):
    artist = smoke_world.catalog.artist_codes
    lists = lists_by_artist_neighbours(smoke_world, width=50)
    ev = Simulator(smoke_world).run(ItemToItem(lists, smoke_world.catalog, skip_artists=1), 300, seed=2,
                                    record_events=True).events
    nxt = ev[ev["recommendation"] >= 0]
    same = artist[nxt["track"].to_numpy()] == artist[nxt["recommendation"].to_numpy()]
    assert same.mean() < 0.01  # only when no entry by a new artist is left


def test_reference_agrees_with_vectorised(smoke_world):
    policy = ItemToItem(lists_by_artist_neighbours(smoke_world), smoke_world.catalog, skip_artists=2)
    fast = Simulator(smoke_world, SimConfig(batch_size=16, max_steps=60)).run(policy, 150, seed=4).sessions
    slow = simulate_reference(smoke_world, policy, 150, seed=4, max_steps=60)
    np.testing.assert_array_equal(fast["time"].to_numpy(), slow["time"].to_numpy())


def test_item_file_round_trip_through_make_policy(tmp_path, smoke_world):
    write_item_recs({0: np.array([1, 2]), 5: np.array([7])}, tmp_path / "i2i.json")
    policy = make_policy(f"i2i:{tmp_path / 'i2i.json'}", smoke_world)
    assert policy.lists[0, :2].tolist() == [1, 2] and policy.lists[5, 0] == 7 and policy.lists[1, 0] == -1


def test_out_of_catalog_lists_are_rejected(smoke_world):
    with pytest.raises(ValueError, match="outside the catalog"):
        ItemToItem({0: np.array([10**6])}, smoke_world.catalog)


# --------------------------------------------------------------------------- botify's rules
# Contextual and I2I on a hand-made batch: exact picks, as arithmetic.


N = 5
LISTS = {0: [1, 2], 1: [0, 2, 3], 2: [4]}  # tracks 3 and 4 have no list


def served(policy, tracks, times, u_last, u_before=0.0):
    """Serve one session that played ``tracks`` with ``times`` (policy called at every step, as
    the simulator does); the pick at the last step, drawn with ``u_last``."""
    batch = SessionBatch(1, N, 1, max_steps=20)
    slot = np.array([0])
    pick = None
    for k, (track, time) in enumerate(zip(tracks, times)):
        batch.history[0, k], batch.played[0, track] = track, True
        batch.step[0], batch.prev_track[0], batch.prev_time[0] = k, track, time
        u = u_last if k == len(tracks) - 1 else u_before
        pick = int(policy.recommend(batch, slot, np.array([u]))[0])
    return pick


def test_contextual_is_uniform_from_the_previous_tracks_list():
    policy = Contextual(LISTS, N)
    assert served(policy, [0], [1.0], u_last=0.49) == LISTS[0][int(0.49 * 2)]  # entry 0 → 1
    assert served(policy, [0], [1.0], u_last=0.5) == LISTS[0][int(0.5 * 2)]  # entry 1 → 2
    assert served(policy, [3, 1], [1.0, 0.0], u_last=0.7) == LISTS[1][int(0.7 * 3)]  # anchor = previous: 3
    assert served(policy, [0, 1], [1.0, 0.9], u_last=0.1) == 0  # may repeat: the rule does not look back


def test_contextual_goes_random_without_a_list():
    assert served(Contextual(LISTS, N), [0, 4], [1.0, 1.0], u_last=0.61) == int(0.61 * N)  # 3


def test_botify_i2i_first_unheard_entry_of_the_only_anchor():
    assert served(BotifyI2I(LISTS, N), [0], [1.0], u_last=0.99) == 1


def test_botify_i2i_draws_the_anchor_by_listened_time():
    # anchors 0 (time 1.0) and 1 (0.5): cumulative 1.0, 1.5 against u · 1.5
    policy = BotifyI2I(LISTS, N)
    assert served(policy, [0, 1], [1.0, 0.5], u_last=0.66) == 2  # 0.99 < 1.0: anchor 0, 1 heard → 2
    assert served(policy, [0, 1], [1.0, 0.5], u_last=0.67) == 2  # 1.005 ≥ 1.0: anchor 1, 0 heard → 2
    assert served(policy, [0, 1, 2], [1.0, 0.5, 0.0], u_last=0.67) == 3  # anchor 1: 0, 2 heard → 3


def test_botify_i2i_sums_the_time_of_a_repeated_track():
    # plays 0 (1.0), 1 (0.5), 0 (0.25): anchor 0 weighs 1.25, anchor 1 0.5; total 1.75
    policy = BotifyI2I({0: [2, 1], 1: [3]}, N)
    assert served(policy, [0, 1, 0], [1.0, 0.5, 0.25], u_last=0.71) == 2  # 1.2425 < 1.25: anchor 0
    assert served(policy, [0, 1, 0], [1.0, 0.5, 0.25], u_last=0.72) == 3  # 1.26 ≥ 1.25: anchor 1


def test_botify_i2i_drops_anchors_without_an_unheard_entry():
    # anchor 0's list [1, 2] is all heard: drawn among 1 (0.5 → 3) and 2 (0.25 → 4), u · 0.75
    policy = BotifyI2I(LISTS, N)
    assert served(policy, [0, 1, 2], [1.0, 0.5, 0.25], u_last=0.66) == 3  # 0.495 < 0.5
    assert served(policy, [0, 1, 2], [1.0, 0.5, 0.25], u_last=0.67) == 4  # 0.5025 ≥ 0.5


def test_botify_i2i_goes_random_when_no_anchor_is_left():
    # only 0, 1 and 2 have lists; all their entries heard, or (track 3, 4) no list
    assert served(BotifyI2I(LISTS, N), [0, 1, 2, 3, 4], [1.0, 0.5, 0.5, 0.5, 0.5], u_last=0.41) == int(0.41 * N)


def test_botify_i2i_looks_at_the_last_ten_plays_only():
    # track 0 (the only one with a list here) played first, then 10 plays of track 4
    policy = BotifyI2I({0: [1]}, N)
    tracks, times = [0] + [4] * 10, [1.0] + [0.9] * 10
    assert served(policy, tracks, times, u_last=0.3) == int(0.3 * N)  # 0 fell out of the window
    assert served(policy, tracks[:-1], times[:-1], u_last=0.3) == 1  # 0 still in the last ten


def test_specs_build_the_rules(tmp_path, smoke_world):
    path = tmp_path / "i2i.json"
    write_item_recs({0: np.array([1, 2])}, path)
    assert make_policy(f"contextual:{path}", smoke_world).name == "contextual"
    assert make_policy(f"botify_i2i:{path}", smoke_world).name == "botify_i2i"
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("contextual", smoke_world)


# --------------------------------------------------------------------------- the one factory
# A trial's serving config picks its policy through serving_policy.


@pytest.fixture(scope="module")
def catalog():
    from sim_bridge.contract.files import load_yaml
    from sim_bridge.defaults import SMOKE_WORLD_CONFIG
    from sim_bridge.worldgen_v1 import WorldGenConfig, generate_world

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


def test_botify_rules_serve_the_item_lists(catalog):
    users, items = {1: np.array([3, 4])}, {3: np.array([5, 6])}
    contextual = serving_policy(ServingConfig("contextual"), catalog, users, items)
    botify_i2i = serving_policy(ServingConfig("botify_i2i"), catalog, users, items)
    assert isinstance(contextual, Contextual) and contextual.lists[3, :2].tolist() == [5, 6]
    assert isinstance(botify_i2i, BotifyI2I) and botify_i2i.lists[3, :2].tolist() == [5, 6]
    assert ServingConfig("contextual").needs_item_lists and not ServingConfig("indexed").needs_item_lists
    with pytest.raises(ValueError, match="'botify_i2i' needs per-track lists"):
        serving_policy(ServingConfig("botify_i2i"), catalog, users)
