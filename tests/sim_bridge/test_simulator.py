"""The listener model rule by rule (docs/listener.md), reference ≡ vectorised, determinism, identity."""
import numpy as np
import pytest

from sim_bridge import simulator as simulator_module
from sim_bridge.simulator import listen_time, SimConfig, Simulator
from sim_bridge.policies import Indexed, Oracle, Random, Sequential, StickyArtist, TopPop
from sim_bridge.reference import simulate_reference
from tests.sim_bridge.worlds import Scripted, tiny_world


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def step_times(world, script, max_steps, seed=0):
    """Times of the recommended tracks (events after the first) of one session."""
    sim = Simulator(world, SimConfig(max_steps=max_steps))
    result = sim.run(Scripted(script), 1, seed=seed, record_events=True)
    return result.events["time"].to_numpy()[1:], result.sessions.iloc[0]


def test_first_track_is_logged_with_time_one_and_counts_for_the_discount():
    world = tiny_world(bias=5.0, sharpness=1.0, gamma=0.8, budget=100)
    times, session = step_times(world, [1], max_steps=1)
    # track 1 shares artist A with the first track 0: one prior play → γ^1
    assert times[0] == np.around(sigmoid((6 - 5) * 1.0) * 0.8**1, 2)
    assert session["time"] == 1.0 + times[0]


def test_repeat_scores_zero_yet_counts_as_a_play_of_its_artist():
    world = tiny_world(bias=5.0, gamma=0.8, budget=100)
    times, _ = step_times(world, [0, 1], max_steps=2)
    assert times[0] == 0.0  # track 0 was the first track
    assert times[1] == np.around(sigmoid(6 - 5) * 0.8**2, 2)  # first track + the repeat


def test_rounding_is_half_to_even():
    # dot 6 == bias → σ = 0.5; γ = 0.25 with one prior play of artist A → 0.125 exactly
    world = tiny_world(bias=6.0, gamma=0.25, budget=100)
    times, _ = step_times(world, [1], max_steps=1)
    assert times[0] == 0.12  # half-up would give 0.13
    assert listen_time(0.0, 0.0, 1.0, 0.75, 1) == 0.38  # 0.375 → 0.38 (to even)


def test_budget_draw_is_strict(monkeypatch):
    # tracks 2, 3, 4: dot 3 == bias, artists B, C, D unplayed → time exactly 0.5
    world = tiny_world(bias=3.0, budget=1)
    monkeypatch.setattr(simulator_module, "counter_uniform", lambda key, s, t: np.full(np.shape(s), 0.5))
    times, session = step_times(world, [2, 3, 4], max_steps=3)
    assert list(times) == [0.5, 0.5, 0.5]
    assert session["tracks"] == 4 and bool(session["truncated"])  # u == time never drops the budget


def test_budget_draw_uses_the_rounded_time(monkeypatch):
    # dot − bias = 5.3 on fresh artists: σ(5.3) ≈ 0.99503 is stored as 1.0 after rounding
    world = tiny_world(bias=3.0 - 5.3, budget=1)
    monkeypatch.setattr(simulator_module, "counter_uniform", lambda key, s, t: np.full(np.shape(s), 0.998))
    times, session = step_times(world, [2, 3, 4], max_steps=3)
    assert sigmoid(5.3) < 0.998 and list(times) == [1.0, 1.0, 1.0]
    assert session["tracks"] == 4 and bool(session["truncated"])  # 0.998 > 0.99503 would have ended it


def test_session_has_at_least_budget_steps(smoke_world):
    sessions = Simulator(smoke_world).run(Random(smoke_world.catalog.n_tracks), 500, seed=1).sessions
    assert sessions["tracks"].min() >= 1 + 5


def _policies(world):
    rng = np.random.default_rng(0)
    lists = {int(u): rng.integers(0, world.catalog.n_tracks, 30) for u in world.users.user[::2]}
    return [
        Random(world.catalog.n_tracks), StickyArtist(world.catalog), StickyArtist(world.catalog, True),
        TopPop(world.catalog), Indexed(lists, world.catalog.n_tracks), Sequential(lists, world.catalog.n_tracks),
        Oracle(world),
    ]


@pytest.mark.parametrize("index", range(7))
def test_reference_and_vectorised_agree_exactly(smoke_world, index):
    policy = _policies(smoke_world)[index]
    fast = Simulator(smoke_world, SimConfig(max_steps=60, batch_size=32)).run(policy, 200, seed=11).sessions
    slow = simulate_reference(smoke_world, policy, 200, seed=11, max_steps=60)
    for column in ("user", "time", "tracks", "truncated"):
        np.testing.assert_array_equal(fast[column].to_numpy(), slow[column].to_numpy(), err_msg=column)


def test_results_do_not_depend_on_batch_size(smoke_world):
    policy = StickyArtist(smoke_world.catalog)
    a = Simulator(smoke_world, SimConfig(batch_size=7)).run(policy, 300, seed=2).sessions
    b = Simulator(smoke_world, SimConfig(batch_size=4096)).run(policy, 300, seed=2).sessions
    assert a.equals(b)


def test_same_seed_identical_other_seed_different(smoke_world):
    sim, policy = Simulator(smoke_world), Random(smoke_world.catalog.n_tracks)
    a, b = sim.run(policy, 300, seed=5, record_events=True), sim.run(policy, 300, seed=5, record_events=True)
    c = sim.run(policy, 300, seed=6, record_events=True)
    assert a.sessions.equals(b.sessions) and a.events.equals(b.events)
    assert not a.events["track"].equals(c.events["track"])


def test_paired_runs_share_users_and_starts(smoke_world):
    sim = Simulator(smoke_world)
    a = sim.run(Random(smoke_world.catalog.n_tracks), 200, seed=9, record_events=True).events
    b = sim.run(TopPop(smoke_world.catalog), 200, seed=9, record_events=True).events
    first = lambda ev: ev[ev["step"] == 0].set_index("session")[["user", "track"]]
    assert first(a).equals(first(b))


@pytest.mark.parametrize("index", [0, 1, 3])
def test_tracks_equal_time_plus_budget_in_expectation(smoke_world, index):
    """E[tracks per session] = E[time per session] + session_budget (every step either keeps
    the budget with probability t or spends it): within 4 standard errors."""
    policy = _policies(smoke_world)[index]
    s = Simulator(smoke_world).run(policy, 20_000, seed=3).sessions
    gap = s["tracks"] - s["time"] - 5
    assert abs(gap.mean()) < 4 * gap.std(ddof=1) / np.sqrt(len(gap))


def test_truncated_share_is_reported(smoke_world):
    result = Simulator(smoke_world, SimConfig(max_steps=5)).run(Oracle(smoke_world), 300, seed=1)
    assert result.truncated_share > 0.5
    assert (result.sessions.loc[result.sessions["truncated"], "tracks"] == 6).all()


def test_bad_recommendation_is_rejected(smoke_world):
    with pytest.raises(ValueError, match="outside 0..1999"):
        Simulator(smoke_world).run(Scripted([5000]), 10, seed=0)


def test_a_failed_run_does_not_leak_state_into_the_next(smoke_world):
    sim = Simulator(smoke_world)
    clean = sim.run(Random(smoke_world.catalog.n_tracks), 100, seed=4).sessions
    with pytest.raises(ValueError):
        sim.run(Scripted([1, 2, 5000]), 100, seed=4)
    assert sim.run(Random(smoke_world.catalog.n_tracks), 100, seed=4).sessions.equals(clean)
    assert sim.batch(100).is_clear()


def test_a_pickled_simulator_keeps_its_start_table_not_its_slot_batches(smoke_world):
    import pickle

    sim = Simulator(smoke_world)
    first = sim.run(StickyArtist(smoke_world.catalog), 200, 4).sessions  # builds starts and a batch
    assert sim._batches
    copy = pickle.loads(pickle.dumps(sim))
    assert copy._batches == {} and "starts" in vars(copy)  # the start table travels, the batches do not
    assert sim._batches  # the original keeps its own
    assert copy.run(StickyArtist(smoke_world.catalog), 200, 4).sessions.equals(first)
