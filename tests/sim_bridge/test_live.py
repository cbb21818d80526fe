"""One request at a time: LiveSessions serves the batch policies exactly as the simulator does."""
import numpy as np
import pytest

from sim_bridge.simulator import counter_uniform, Simulator
from sim_bridge.live import LiveSessions
from sim_bridge.policies import Indexed, StickyArtist, ItemToItem

from tests.sim_bridge.worlds import tiny_world


def item_lists(world, width=30, seed=0):
    rng = np.random.default_rng(seed)
    return {t: rng.integers(0, world.catalog.n_tracks, width) for t in range(world.catalog.n_tracks)}


def user_lists(world, width=30, seed=1):
    rng = np.random.default_rng(seed)
    return {int(u): rng.integers(0, world.catalog.n_tracks, width) for u in world.users.user[::2]}


POLICIES = {
    "sticky_artist": lambda w: StickyArtist(w.catalog),
    "indexed": lambda w: Indexed(user_lists(w), w.catalog.n_tracks),
    "i2i": lambda w: ItemToItem(item_lists(w), w.catalog, like_threshold=0.4, skip_artists=2),
}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_replaying_requests_gives_the_simulators_recommendations(smoke_world, name):
    """The simulator's sessions, replayed request by request and interleaved across users, with the
    simulator's own draws: every recommendation is the one the batch simulator made."""
    sim = Simulator(smoke_world)
    n = 120
    result = sim.run(POLICIES[name](smoke_world), n, seed=7, record_events=True)
    ev = result.events
    first_of_user = ev.drop_duplicates("user")["session"].unique()  # one session per user: no overlap
    ev = ev[ev["session"].isin(first_of_user)].sort_values(["step", "session"])  # round robin
    plan = sim.plan(n, seed=7)
    live = LiveSessions(smoke_world.catalog, capacity=len(first_of_user))
    policy = POLICIES[name](smoke_world)  # a fresh instance: i2i keeps per-slot state
    served = 0
    for row in ev.itertuples():
        if row.recommendation < 0:
            live.last(row.user)
            continue
        u = float(counter_uniform(plan.policy_key, row.session, row.step + 1))
        assert live.next(row.user, row.track, row.time, policy, u) == row.recommendation
        served += 1
    assert served > 3 * len(first_of_user) and len(live) == 0 and live.evicted == 0


def test_last_resets_the_session():
    world = tiny_world()
    live = LiveSessions(world.catalog, capacity=4)
    policy = ItemToItem({0: np.array([1, 2]), 1: np.array([2, 3])}, world.catalog, like_threshold=0.5, skip_artists=0)
    assert live.next(42, 0, 1.0, policy, 0.5) == 1
    assert live.next(42, 1, 0.9, policy, 0.5) == 2  # anchor 1 (liked); 2 is unplayed
    live.last(42)
    assert len(live) == 0 and not live.batch.played.any() and not live.batch.artist_plays.any()
    assert live.next(42, 0, 1.0, policy, 0.5) == 1  # a new session: nothing played yet


def test_a_full_pool_closes_the_least_recently_active_session():
    world = tiny_world()
    live = LiveSessions(world.catalog, capacity=2)
    sticky = StickyArtist(world.catalog)
    live.next(1, 0, 1.0, sticky, 0.0)
    live.next(2, 2, 1.0, sticky, 0.0)
    live.next(1, 1, 0.5, sticky, 0.0)  # user 1 is now the most recent
    live.next(3, 3, 1.0, sticky, 0.0)  # evicts user 2
    assert live.evicted == 1 and set(live.slot_of) == {1, 3}
    assert live.batch.step[live.slot_of[1]] == 1 and live.batch.step[live.slot_of[3]] == 0


def test_a_session_at_max_steps_starts_over():
    world = tiny_world()
    live = LiveSessions(world.catalog, capacity=1, max_steps=3)
    sticky = StickyArtist(world.catalog)
    for step, track in enumerate([0, 1, 2, 3]):
        live.next(42, track, 0.5, sticky, 0.0)
        assert live.batch.step[live.slot_of[42]] == step
    live.next(42, 4, 0.5, sticky, 0.0)
    slot = live.slot_of[42]
    assert live.batch.step[slot] == 0 and live.batch.played[slot].sum() == 1


def test_rejects_a_track_outside_the_catalog():
    world = tiny_world()
    live = LiveSessions(world.catalog)
    with pytest.raises(ValueError, match="track 5 is not in the catalog"):
        live.next(42, 5, 1.0, StickyArtist(world.catalog), 0.0)
