"""What each session is before any policy acts: its user, interest, first track and draw keys.

Drawn up front from one seed, so two policies simulated with the same seed meet the same
users and session starts (common random numbers), and the reference loop replays the plan.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_bridge.world import Users


@dataclass(frozen=True)
class SessionPlan:
    user_index: np.ndarray  # int64 [n] row into Users
    interest: np.ndarray  # int64 [n] interest track (the session embedding s = e[interest])
    start_position: np.ndarray  # int64 [n] which of the user's interest_neighbours starts it
    budget_key: int  # key of the per-step budget draws (listener.counter_uniform)
    policy_key: int  # key of the policies' per-step draws

    def __len__(self) -> int:
        return len(self.user_index)


def draw_session_plan(users: Users, n_sessions: int, seed: int) -> SessionPlan:
    """A session samples a user uniformly, then one of the user's interests uniformly."""
    if n_sessions < 1:
        raise ValueError(f"n_sessions must be >= 1, got {n_sessions}")
    rng = np.random.default_rng(seed)
    user_index = rng.integers(len(users), size=n_sessions)
    slot = (rng.random(n_sessions) * users.n_interests[user_index]).astype(np.int64)
    position = (rng.random(n_sessions) * users.interest_neighbours[user_index]).astype(np.int64)
    budget_key, policy_key = (int(k) for k in rng.integers(0, 2**63, size=2))
    return SessionPlan(user_index, users.interests[user_index, slot], position, budget_key, policy_key)
