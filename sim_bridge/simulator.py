"""The vectorised listener simulator (docs/listener.md): a batch of sessions steps with one call.

Each session follows the course's listener model exactly. Slots are refilled as sessions
end, so long sessions (good policies make hundreds of tracks) do not stall the batch.
All randomness comes from the seed: the session plan from ``default_rng(seed)``, per-step
draws from counter-based streams keyed by (session, step), so results do not depend on
the batch size and two policies can be compared on the very same draws.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

import numpy as np
import pandas as pd

from sim_bridge import columns as C
from sim_bridge.listener import counter_uniform, listen_time
from sim_bridge.policies import Policy
from sim_bridge.session_batch import SessionBatch
from sim_bridge.session_plan import SessionPlan, draw_session_plan
from sim_bridge.starts import StartTable
from sim_bridge.world import World

EPOCH_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z: simulated logs start here


@dataclass(frozen=True)
class SimConfig:
    """Simulator knobs that do not change the listener model."""

    max_steps: int = 1000  # safety cap on recommendations per session; capped sessions are "truncated"
    batch_size: int = 2048  # concurrent sessions (memory ≈ batch_size × n_tracks bytes)

    def __post_init__(self) -> None:
        if not 1 <= self.max_steps <= 30_000:  # artist play counts are int16
            raise ValueError(f"max_steps must be in 1..30000, got {self.max_steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class SimResult:
    """Per-session outcomes and, when recorded, the botify events they produced."""

    sessions: pd.DataFrame  # columns: session, user, arm, time, tracks, latency, truncated
    events: pd.DataFrame | None = None  # session, step, user, track, time, recommendation, arm

    @property
    def truncated_share(self) -> float:
        return float(self.sessions[C.TRUNCATED].mean())


class Simulator:
    """Runs policies against one world's listeners."""

    def __init__(self, world: World, config: SimConfig = SimConfig()):
        self.world = world
        self.config = config
        self.embeddings = world.embeddings.astype(np.float64)  # float64: exact, order-free maths
        self.artist_of = world.catalog.artist_codes
        self.n_artists = int(self.artist_of.max()) + 1
        self._batches: dict[int, SessionBatch] = {}

    def __getstate__(self) -> dict:
        # pickled (e.g. into Ray's object store) with its start table but without the slot
        # batches: those are batch_size × n_tracks bytes each and cheap to rebuild
        return {**self.__dict__, "_batches": {}}

    @cached_property
    def starts(self) -> StartTable:
        """Neighbour lists of every interest track, computed once per world."""
        users = self.world.users
        return StartTable(self.world.embeddings, users.interests, int(users.interest_neighbours.max()))

    def batch(self, size: int) -> SessionBatch:
        """A cleared slot batch, reused across runs (its big arrays are costly to fault in)."""
        cached = self._batches.get(size)
        if cached is None:
            cached = SessionBatch(size, self.world.catalog.n_tracks, self.n_artists, self.config.max_steps)
            self._batches = {size: cached}  # keep one: a batch holds batch_size × n_tracks bytes
        return cached

    def plan(self, n_sessions: int, seed: int) -> SessionPlan:
        return draw_session_plan(self.world.users, n_sessions, seed)

    def run(
        self,
        policy: Policy | Mapping[str, Policy],
        n_sessions: int,
        seed: int,
        arm_of_session: np.ndarray | None = None,
        record_events: bool = False,
    ) -> SimResult:
        """Simulate ``n_sessions`` sessions. ``policy`` may map arm names to policies, with
        ``arm_of_session`` (int [n], index into that mapping) saying which arm serves each."""
        policies = dict(policy) if isinstance(policy, Mapping) else {policy.name: policy}
        plan = self.plan(n_sessions, seed)
        if arm_of_session is None:
            if len(policies) != 1:
                raise ValueError("several policies need arm_of_session (see sim_bridge.experiment)")
            arm_of_session = np.zeros(n_sessions, dtype=np.int64)
        if len(arm_of_session) != n_sessions:
            raise ValueError(f"arm_of_session has {len(arm_of_session)} entries for {n_sessions} sessions")
        rollout = _Rollout(self, plan, list(policies.values()), np.asarray(arm_of_session), record_events)
        try:
            rollout.run()
        except BaseException:
            self._batches.clear()  # the batch may hold a half-run's state
            raise
        return rollout.result(list(policies))


class _Rollout:
    """One simulation run: slots, refills and the per-step update."""

    def __init__(self, sim: Simulator, plan: SessionPlan, policies: list, arms: np.ndarray, record: bool):
        self.sim, self.plan, self.policies, self.arms, self.record = sim, plan, policies, arms, record
        cfg, users = sim.config, sim.world.users
        size = min(cfg.batch_size, len(plan))
        self.batch = sim.batch(size)
        self.first_track = sim.starts.first_tracks(plan.interest, plan.start_position)
        self.bias = users.consume_bias[plan.user_index]
        self.sharpness = users.consume_sharpness[plan.user_index]
        self.gamma = users.artist_discount_gamma[plan.user_index]
        self.next_session = 0
        n = len(plan)
        self.out_time = np.zeros(n)
        self.out_tracks = np.zeros(n, dtype=np.int64)
        self.out_truncated = np.zeros(n, dtype=bool)
        self.events: list[tuple[np.ndarray, ...]] = []

    def run(self) -> None:
        while True:
            self.refill()
            active = np.flatnonzero(self.batch.session >= 0)
            if len(active) == 0:
                return
            self.step(active)

    def refill(self) -> None:
        """Start the next planned sessions in free slots: first track, time 1.0, discount 1."""
        free = np.flatnonzero(self.batch.session < 0)
        take = min(len(free), len(self.plan) - self.next_session)
        if take == 0:
            return
        slots, sid = free[:take], np.arange(self.next_session, self.next_session + take)
        self.next_session += take
        b, users, first = self.batch, self.sim.world.users, self.first_track[sid]
        b.session[slots] = sid
        b.user_index[slots] = self.plan.user_index[sid]
        b.user[slots] = users.user[self.plan.user_index[sid]]
        b.arm[slots] = self.arms[sid]
        b.interest_track[slots] = self.plan.interest[sid]
        b.prev_track[slots], b.prev_time[slots], b.total_time[slots] = first, 1.0, 1.0
        b.step[slots] = 0
        b.budget[slots] = users.session_budget[self.plan.user_index[sid]]
        b.history[slots, 0] = first
        b.played[slots, first] = True
        b.artist_plays[slots, self.sim.artist_of[first]] = 1

    def recommend(self, active: np.ndarray) -> np.ndarray:
        b = self.batch
        u = counter_uniform(self.plan.policy_key, b.session[active], b.step[active] + 1)
        recs = np.empty(len(active), dtype=np.int64)
        for arm, policy in enumerate(self.policies):
            mine = b.arm[active] == arm
            if mine.any():
                recs[mine] = policy.recommend(b, active[mine], u[mine])
        n_tracks = self.sim.world.catalog.n_tracks
        if len(recs) and (recs.min() < 0 or recs.max() >= n_tracks):
            raise ValueError(f"a policy recommended a track outside 0..{n_tracks - 1}")
        return recs

    def step(self, active: np.ndarray) -> None:
        """One recommendation for every active session, then the budget draw."""
        b, sim = self.batch, self.sim
        recs = self.recommend(active)
        sid = b.session[active]
        if self.record:
            self.events.append((sid, b.step[active], b.prev_track[active], b.prev_time[active], recs))
        artist = sim.artist_of[recs]
        dot = np.einsum("ij,ij->i", sim.embeddings[recs], sim.embeddings[b.interest_track[active]])
        t = listen_time(dot, self.bias[sid], self.sharpness[sid], self.gamma[sid], b.artist_plays[active, artist])
        t[b.played[active, recs]] = 0.0  # a repeat scores nothing ...
        b.played[active, recs] = True
        b.artist_plays[active, artist] += 1  # ... yet counts as a play of its artist
        b.step[active] += 1
        b.history[active, b.step[active]] = recs
        b.prev_track[active], b.prev_time[active] = recs, t
        b.total_time[active] += t
        u = counter_uniform(self.plan.budget_key, sid, b.step[active])
        b.budget[active] -= (u > t).astype(np.int64)  # strict, on the rounded time
        over = b.step[active] >= sim.config.max_steps
        self.finish(active[(b.budget[active] <= 0) | over], active[over & (b.budget[active] > 0)])

    def finish(self, done: np.ndarray, truncated: np.ndarray) -> None:
        if len(done) == 0:
            return
        b = self.batch
        sid = b.session[done]
        self.out_time[sid] = b.total_time[done]
        self.out_tracks[sid] = b.n_played[done]
        self.out_truncated[b.session[truncated]] = True
        if self.record:
            self.events.append((sid, b.step[done], b.prev_track[done], b.prev_time[done], np.full(len(done), -1)))
        b.clear(done, self.sim.artist_of)

    def result(self, arm_names: list[str]) -> SimResult:
        users = self.sim.world.users.user[self.plan.user_index]
        arm = np.asarray(arm_names, dtype=object)[self.arms]
        sessions = pd.DataFrame(
            {
                C.SESSION: np.arange(len(self.plan)),
                C.USER: users,
                C.ARM: arm,
                C.TIME: self.out_time,
                C.TRACKS: self.out_tracks,
                C.LATENCY: 0.0,  # simulated serving is instantaneous
                C.TRUNCATED: self.out_truncated,
            }
        )
        return SimResult(sessions, self.event_frame(users, arm) if self.record else None)

    def event_frame(self, users: np.ndarray, arm: np.ndarray) -> pd.DataFrame:
        """One row per botify request, ordered by session then step, with timestamps."""
        sid, step, track, time, rec = (np.concatenate(parts) for parts in zip(*self.events))
        order = np.lexsort((step, sid))
        sid, step = sid[order], step[order]
        stride = self.sim.config.max_steps + 2  # ms between session starts: sessions never overlap
        return pd.DataFrame(
            {
                C.SESSION: sid,
                "step": step,
                C.TIMESTAMP: EPOCH_MS + sid * stride + step,
                C.USER: users[sid],
                C.TRACK: track[order],
                C.TIME: time[order],
                C.RECOMMENDATION: rec[order],
                C.ARM: arm[sid],
            }
        )
