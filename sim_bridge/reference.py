"""A plain per-session loop of the listener model: slow, obvious, and the check on the fast path.

It replays the same session plan and the same counter-based draws as
:class:`sim_bridge.simulator.Simulator`, finds session starts by a full sort, and keeps a
session's plays in a Python set and dict. ``tests`` assert both give identical sessions.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.simulator import SessionBatch, SessionPlan, counter_uniform, draw_session_plan, listen_time
from sim_bridge.world import World


def simulate_reference(world: World, policy, n_sessions: int, seed: int, max_steps: int = 1000) -> pd.DataFrame:
    """Per-session table (session, user, time, tracks, truncated) of ``n_sessions`` sessions."""
    plan = draw_session_plan(world.users, n_sessions, seed)
    emb = world.embeddings.astype(np.float64)
    rows = [_one_session(world, emb, policy, plan, i, max_steps) for i in range(n_sessions)]
    return pd.DataFrame(rows, columns=[C.SESSION, C.USER, C.TIME, C.TRACKS, C.TRUNCATED])


def first_track(emb: np.ndarray, interest: int, position: int) -> int:
    """The ``position``-th track nearest to ``interest`` by inner product (ties by id)."""
    scores = emb @ emb[interest]
    return int(np.lexsort((np.arange(len(scores)), -scores))[position])


def _one_session(world: World, emb: np.ndarray, policy, plan: SessionPlan, i: int, max_steps: int) -> tuple:
    users, artist_of = world.users, world.catalog.artist_codes
    row = int(plan.user_index[i])
    s = emb[plan.interest[i]]
    bias, sharpness = users.consume_bias[row], users.consume_sharpness[row]
    gamma, budget = users.artist_discount_gamma[row], int(users.session_budget[row])
    track = first_track(emb, int(plan.interest[i]), int(plan.start_position[i]))
    played, artist_plays = {track}, Counter({artist_of[track]: 1})
    view = _PolicyView(world, int(users.user[row]), row, int(plan.interest[i]), max_steps)
    view.play(track, 1.0, artist_of)
    total, steps = 1.0, 0
    while budget > 0 and steps < max_steps:
        steps += 1
        u_policy = counter_uniform(plan.policy_key, i, steps)
        rec = int(policy.recommend(view.batch, np.array([0]), np.array([u_policy]))[0])
        if rec in played:
            t = 0.0
        else:
            dot = float(emb[rec] @ s)
            t = float(listen_time(dot, bias, sharpness, gamma, artist_plays[artist_of[rec]]))
        played.add(rec)
        artist_plays[artist_of[rec]] += 1
        view.play(rec, t, artist_of)
        total += t
        if float(counter_uniform(plan.budget_key, i, steps)) > t:
            budget -= 1
    return i, int(users.user[row]), total, steps + 1, budget > 0


class _PolicyView:
    """A one-slot :class:`SessionBatch` that shows the policy this session's state."""

    def __init__(self, world: World, user: int, user_index: int, interest: int, max_steps: int):
        n_artists = int(world.catalog.artist_codes.max()) + 1
        self.batch = SessionBatch(1, world.catalog.n_tracks, n_artists, max_steps)
        b = self.batch
        b.session[0], b.user[0], b.user_index[0], b.interest_track[0] = 0, user, user_index, interest
        b.step[0] = -1

    def play(self, track: int, time: float, artist_of: np.ndarray) -> None:
        b = self.batch
        b.step[0] += 1
        b.history[0, b.step[0]] = track
        b.played[0, track] = True
        b.artist_plays[0, artist_of[track]] += 1
        b.prev_track[0], b.prev_time[0] = track, time
