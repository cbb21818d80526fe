"""Drive a recommender service over HTTP with the simulator's listeners (``python -m sim_bridge drive``).

The course measures a recommender by pointing its simulator at the running service: each
episode posts one request at a time, ``POST /next/<user>`` with the track just played and its
listened fraction (the first call carries the session's first track with time 1.0), and
``POST /last/<user>`` after the final step. This client does the same with this project's
listener model: the session plan (users, interests, first tracks) and the per-step budget draws
are the simulator's own (:mod:`sim_bridge.simulator`, :mod:`sim_bridge.simulator`), so a
service that serves a deterministic policy yields exactly the sessions of an in-process run.
Only the recommendations come from the service.

``concurrency`` sessions run at once (asyncio, one keep-alive connection each). Two sessions of
one user never overlap: a service that keeps session state by user would mix them up, and
botify's log analysis splits a user's sessions by time.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp
import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.simulator import SessionPlan, Simulator, counter_uniform, listen_time
from sim_bridge.world import World


class DriveError(ValueError):
    """The service answered something other than botify's API; the message names the request."""


@dataclass(frozen=True)
class DriveConfig:
    url: str  # the service's base URL, e.g. http://127.0.0.1:5001
    sessions: int
    concurrency: int = 8
    seed: int = 0  # the session plan and the listeners' draws (as the simulator's seed)
    max_steps: int = 1000  # safety cap on requests per session, as the simulator's
    timeout_s: float = 30.0  # per request
    wait_s: float = 0.0  # wait this long for the service to come up (it may still be starting)

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.concurrency < 1 or self.max_steps < 1 or self.timeout_s <= 0 or self.wait_s < 0:
            raise ValueError("--sessions, --concurrency and --max-steps must be >= 1, --timeout > 0, --wait >= 0")


@dataclass(frozen=True)
class DriveResult:
    """Per-session outcomes as the client saw them, and every request's round-trip time."""

    sessions: pd.DataFrame  # session, user, time, tracks, truncated
    latency: np.ndarray  # float64 [requests], seconds
    wall_s: float

    @property
    def requests(self) -> int:
        return len(self.latency)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latency, q) * 1000)

    def summary(self) -> str:
        s = self.sessions
        return (f"{len(s)} sessions, {self.requests} requests in {self.wall_s:.1f}s: "
                f"{self.requests_per_s:.0f} requests/s, latency p50 {self.percentile_ms(50):.1f} ms, "
                f"p99 {self.percentile_ms(99):.1f} ms; mean time per session {s[C.TIME].mean():.3f}, "
                f"tracks {s[C.TRACKS].mean():.2f}, truncated {100 * s[C.TRUNCATED].mean():.2f}%")


def drive(world: World, config: DriveConfig) -> DriveResult:
    """Run ``config.sessions`` listener sessions against the service at ``config.url``."""
    return asyncio.run(_Driver(world, config).run())


class _Driver:
    def __init__(self, world: World, config: DriveConfig):
        sim = Simulator(world)
        self.world, self.config = world, config
        self.url = config.url.rstrip("/")
        self.plan: SessionPlan = sim.plan(config.sessions, config.seed)
        self.first = sim.starts.first_tracks(self.plan.interest, self.plan.start_position)
        self.emb = sim.embeddings
        self.artist_of = world.catalog.artist_codes
        self.latency: list[float] = []
        self.rows: list[tuple] = []
        self.busy: dict[int, asyncio.Lock] = {}  # user → held while one of their sessions runs

    async def run(self) -> DriveResult:
        cfg = self.config
        timeout = aiohttp.ClientTimeout(total=cfg.timeout_s)
        connector = aiohttp.TCPConnector(limit=cfg.concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            await self._wait_until_up(http)
            await self._check_catalog(http)
            todo = iter(range(cfg.sessions))
            start = time.perf_counter()
            await asyncio.gather(*(self._worker(http, todo) for _ in range(cfg.concurrency)))
            wall = time.perf_counter() - start
        frame = pd.DataFrame(sorted(self.rows), columns=[C.SESSION, C.USER, C.TIME, C.TRACKS, C.TRUNCATED])
        return DriveResult(frame, np.asarray(self.latency), wall)

    async def _worker(self, http: aiohttp.ClientSession, todo) -> None:
        for i in todo:  # a shared iterator: each session is taken by exactly one worker
            user = int(self.world.users.user[self.plan.user_index[i]])
            async with self.busy.setdefault(user, asyncio.Lock()):
                self.rows.append(await self._session(http, i, user))

    async def _session(self, http: aiohttp.ClientSession, i: int, user: int) -> tuple:
        """One listener session (the simulator's model, step by step, over HTTP)."""
        users, row = self.world.users, int(self.plan.user_index[i])
        s = self.emb[self.plan.interest[i]]
        bias, sharpness = users.consume_bias[row], users.consume_sharpness[row]
        gamma, budget = users.artist_discount_gamma[row], int(users.session_budget[row])
        track, listened = int(self.first[i]), 1.0
        played, artist_plays = {track}, Counter({self.artist_of[track]: 1})
        total, steps = 1.0, 0
        while budget > 0 and steps < self.config.max_steps:
            rec = await self._post(http, "next", user, track, listened)
            steps += 1
            if rec in played:
                listened = 0.0
            else:
                dot = float(self.emb[rec] @ s)
                listened = float(listen_time(dot, bias, sharpness, gamma, artist_plays[self.artist_of[rec]]))
            played.add(rec)
            artist_plays[self.artist_of[rec]] += 1  # a repeat counts for its artist too
            total += listened
            track = rec
            if float(counter_uniform(self.plan.budget_key, i, steps)) > listened:
                budget -= 1
        await self._post(http, "last", user, track, listened)
        return i, user, total, steps + 1, budget > 0

    async def _post(self, http: aiohttp.ClientSession, message: str, user: int, track: int,
                    listened: float) -> int | None:
        """POST /next or /last; the recommended track (next) or None (last)."""
        url = f"{self.url}/{message}/{user}"
        start = time.perf_counter()
        try:
            async with http.post(url, json={C.TRACK: track, C.TIME: listened}) as resp:
                status, body = resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise DriveError(f"POST {url}: {type(exc).__name__}: {exc} (is the service running?)") from None
        self.latency.append(time.perf_counter() - start)
        if status != 200 or not isinstance(body, dict) or body.get(C.USER) != user:
            raise DriveError(f"POST {url} {{'track': {track}, 'time': {listened}}}: HTTP {status} {body}")
        if message == C.MESSAGE_LAST:
            return None
        rec = body.get(C.TRACK)
        if isinstance(rec, bool) or not isinstance(rec, int) or not 0 <= rec < self.world.catalog.n_tracks:
            raise DriveError(f"POST {url}: 'track' must be a track of the catalog, got {rec!r}")
        return rec

    async def _wait_until_up(self, http: aiohttp.ClientSession) -> None:
        """Poll ``GET /`` for up to ``wait_s`` seconds (the service answers 200 once deployed)."""
        deadline = time.monotonic() + self.config.wait_s
        while time.monotonic() < deadline:
            try:
                async with http.get(self.url + "/") as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(1.0)

    async def _check_catalog(self, http: aiohttp.ClientSession) -> None:
        """The service must serve this world's catalog: as many tracks, the same artist of track 0."""
        n = self.world.catalog.n_tracks
        first, last, beyond = [await self._get(http, f"/track/{t}") for t in (0, n - 1, n)]
        ours = self.world.catalog.tracks.iloc[0][C.ARTIST]
        if first[0] != 200 or first[1].get(C.ARTIST) != ours or last[0] != 200 or beyond[0] != 404:
            raise DriveError(f"{self.url} does not serve this world's catalog ({n} tracks, track 0 by {ours!r}); "
                             "drive it with the service's world (--world)")

    async def _get(self, http: aiohttp.ClientSession, path: str) -> tuple[int, dict]:
        try:
            async with http.get(self.url + path) as resp:
                body = await resp.json(content_type=None)
                return resp.status, body if isinstance(body, dict) else {}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise DriveError(f"GET {self.url}{path}: {type(exc).__name__}: {exc} (is the service running?)") from None
