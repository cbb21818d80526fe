"""botify's Contextual and I2I serving rules on a hand-made batch: exact picks, as arithmetic."""
import numpy as np
import pytest

from sim_bridge.policies import BotifyI2I, Contextual, make_policy
from sim_bridge.contract.recs import write_item_recs
from sim_bridge.simulator import SessionBatch

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
