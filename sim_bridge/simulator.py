"""The vectorised listener simulator (docs/listener.md): a batch of sessions steps with one call.

Each session follows the course's listener model exactly. Slots are refilled as sessions
end, so long sessions (good policies make hundreds of tracks) do not stall the batch.
All randomness comes from the seed: the session plan from ``default_rng(seed)``, per-step
draws from counter-based streams keyed by (session, step), so results do not depend on
the batch size and two policies can be compared on the very same draws.

In this module, in the order a run uses them:

* the listener's response to one recommendation (:func:`listen_time`) and the counter-based
  draws (:func:`counter_uniform`), pure functions shared with the plain loop of
  :mod:`sim_bridge.reference` and the HTTP driver of :mod:`sim_bridge.drive`;
* session starts (:class:`StartTable`): the ``k`` tracks nearest to an interest track;
* the session plan (:class:`SessionPlan`): who listens, with what interest, from where;
* the batch state policies look at (:class:`SessionBatch`) and what a policy is (:class:`Policy`);
* the simulator (:class:`Simulator`) and its botify events (:func:`result_events`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Mapping, Protocol

import faiss
import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.contract.events import build_events
from sim_bridge.world import Users, World

EPOCH_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z: simulated logs start here


# --------------------------------------------------------------------------- the listener
# Pure functions of numbers: they work on numpy arrays and on scalars alike, so the vectorised
# simulator and the per-session reference apply the very same formula.

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_STEP_MIX = np.uint64(0xD1B54A32D192ED03)
_TWO_POW_MINUS_53 = 1.0 / (1 << 53)


def listen_time(dot, bias, sharpness, gamma, artist_plays):
    """round(σ((⟨e_r, s⟩ − bias) · sharpness) · γ^artist_plays, 2), half to even."""
    fraction = 1.0 / (1.0 + np.exp(-(dot - bias) * sharpness))
    return np.around(fraction * np.power(gamma, artist_plays), 2)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective 64-bit mixer (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def counter_uniform(key: int, session, step) -> np.ndarray:
    """Uniform [0, 1) draw that is a pure function of (key, session, step).

    Counter-based, like Philox: a session's draws do not depend on which other sessions
    share its batch, so two policies run with one key see the very same draws (common
    random numbers) and the reference loop reproduces the vectorised simulator exactly.
    """
    session = np.asarray(session, dtype=np.uint64)
    step = np.asarray(step, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = _splitmix64(np.uint64(key) + session * _GOLDEN)
        x = _splitmix64(x + step * _STEP_MIX)
    return (x >> np.uint64(11)).astype(np.float64) * _TWO_POW_MINUS_53


# --------------------------------------------------------------------------- session starts
# Computed once per world for every interest track (in float64, ties broken by track id) and
# kept by the simulator, so a session start is a table lookup.

_CHUNK = 4096


def nearest_by_inner_product(embeddings: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """int64 [len(queries), k]: for each query track, the k tracks with the largest ⟨e_t, e_q⟩.

    faiss screens ``k + 16`` candidates in float32; they are re-ranked in float64 with ties
    broken by track id, so the answer does not depend on BLAS rounding.
    """
    emb32 = np.ascontiguousarray(embeddings, dtype=np.float32)
    k = min(k, len(emb32))
    width = min(len(emb32), k + 16)
    index = faiss.IndexFlatIP(emb32.shape[1])
    index.add(emb32)
    out = np.empty((len(queries), k), dtype=np.int64)
    emb64 = emb32.astype(np.float64)
    for lo in range(0, len(queries), _CHUNK):
        q = queries[lo : lo + _CHUNK]
        _, cand = index.search(emb32[q], width)  # [chunk, width]
        scores = np.einsum("cwd,cd->cw", emb64[cand], emb64[q])
        order = np.lexsort((cand, -scores), axis=1)
        out[lo : lo + _CHUNK] = np.take_along_axis(cand, order, axis=1)[:, :k]
    return out


class StartTable:
    """Neighbour lists for a fixed set of interest tracks; ``lookup`` maps tracks to rows."""

    def __init__(self, embeddings: np.ndarray, interest_tracks: np.ndarray, k: int):
        self.tracks = np.unique(interest_tracks[interest_tracks >= 0])
        self.neighbours = nearest_by_inner_product(embeddings, self.tracks, k)  # [T, k]

    def first_tracks(self, interest: np.ndarray, position: np.ndarray) -> np.ndarray:
        """The ``position``-th nearest neighbour of each ``interest`` track."""
        rows = np.searchsorted(self.tracks, interest)
        return self.neighbours[rows, position]


# --------------------------------------------------------------------------- the session plan
# What each session is before any policy acts, drawn up front from one seed: two policies
# simulated with the same seed meet the same users and session starts (common random numbers),
# and the reference loop replays the plan.

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


# --------------------------------------------------------------------------- the batch state
# Arrays are indexed by slot; a slot holds one session at a time (``session == -1`` when free).
# ``interest_track`` is hidden truth: only the oracle policy reads it.

class SessionBatch:
    """Slot arrays for ``size`` concurrent sessions over a catalog of ``n_tracks`` tracks."""

    def __init__(self, size: int, n_tracks: int, n_artists: int, max_steps: int):
        self.session = np.full(size, -1, dtype=np.int64)
        self.user = np.zeros(size, dtype=np.int64)  # user id as logged
        self.user_index = np.zeros(size, dtype=np.int64)
        self.arm = np.zeros(size, dtype=np.int64)
        self.interest_track = np.zeros(size, dtype=np.int64)  # hidden: oracle only
        self.prev_track = np.zeros(size, dtype=np.int64)
        self.prev_time = np.zeros(size, dtype=np.float64)
        self.step = np.zeros(size, dtype=np.int64)  # recommendations served so far
        self.budget = np.zeros(size, dtype=np.int64)
        self.total_time = np.zeros(size, dtype=np.float64)
        self.history = np.zeros((size, max_steps + 1), dtype=np.int64)  # played tracks in order
        self.played = np.zeros((size, n_tracks), dtype=bool)
        self.artist_plays = np.zeros((size, n_artists), dtype=np.int16)  # < max_steps + 1 plays

    @property
    def n_played(self) -> np.ndarray:
        """Tracks played per slot, the first track included."""
        return self.step + 1

    def is_clear(self) -> bool:
        """No slot holds a session and no cell is set: the batch can serve another run."""
        return bool((self.session < 0).all() and not self.played.any() and not self.artist_plays.any())

    def clear(self, slots: np.ndarray, artist_of: np.ndarray) -> None:
        """Forget the sessions in ``slots``, touching only the cells they set."""
        lengths = self.n_played[slots]
        width = int(lengths.max())
        mask = np.arange(width) < lengths[:, None]
        rows = np.repeat(slots, lengths)
        tracks = self.history[slots, :width][mask]
        self.played[rows, tracks] = False
        self.artist_plays[rows, artist_of[tracks]] = 0
        self.session[slots] = -1


class Policy(Protocol):
    """What the service recommends next: one track per slot of a batch (see :mod:`sim_bridge.policies`).

    ``u`` holds one uniform draw per slot from the simulator's counter-based stream, so a
    policy's choices are a pure function of the session, the step and the state.
    """

    name: str

    def recommend(self, batch: SessionBatch, slots: np.ndarray, u: np.ndarray) -> np.ndarray: ...


# --------------------------------------------------------------------------- the simulator


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
                raise ValueError("several policies need arm_of_session (see sim_bridge.abtest)")
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


def result_events(result: SimResult, experiment: str) -> pd.DataFrame:
    """botify events (docs/formats.md) of a simulation run recorded with ``record_events=True``."""
    ev = result.events
    return build_events(
        session=ev[C.SESSION].to_numpy(),
        user=ev[C.USER].to_numpy(),
        track=ev[C.TRACK].to_numpy(),
        time=ev[C.TIME].to_numpy(),
        recommendation=ev[C.RECOMMENDATION].to_numpy(),
        timestamp=ev[C.TIMESTAMP].to_numpy(),
        latency=np.zeros(len(ev)),
        arm=ev[C.ARM].to_numpy(),
        experiment=experiment,
    )
