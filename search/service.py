"""botify's HTTP API over the search's policies: requests in, botify events logged, JSON out.

:class:`BotifyService` is the whole service without the transport: ``handle(method, path, body)``
returns an HTTP status and a JSON-ready payload. ``search.serve`` runs one per Ray Serve replica.

* ``POST /next/<user>`` with ``{"track": int, "time": float}`` (the track just played and its
  listened fraction; a session's first call carries its first track with time 1.0) → 200
  ``{"user": user, "track": next}``; logged as a "next" event with the recommendation.
* ``POST /last/<user>`` with the same body after a session's final step → 200 ``{"user": user}``;
  logged as "last"; the user's session state is reset.
* ``GET /`` → liveness; ``GET /track/<track>`` → the catalog row, 404 when unknown.
* Anything malformed → 400 with ``{"message": ...}`` naming the field; unknown routes → 404.

Users are assigned to arms by botify's rule (``sim_bridge.abtest``) under the experiment's
name. Each event is one JSON line in botify's format (``data.json``), written and flushed before
the response is returned, so a response the client holds is an event on disk.
"""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim_bridge.contract import columns as C
from sim_bridge.abtest import arm_index, arm_names
from sim_bridge.contract.catalog import read_catalog
from sim_bridge.live import LiveSessions
from sim_bridge.world import TRACKS_JSON

from search.arms import Arm, build_policy

LOG_FILE = "data.json"
_INT = re.compile(r"-?[0-9]{1,19}")
_API = "POST /next/<user>, POST /last/<user>, GET /, GET /track/<track>"


@dataclass(frozen=True)
class ServiceConfig:
    """What every replica serves (plain data: it travels to the replicas)."""

    arms: tuple[Arm, ...]  # arm 0 is the control "C", then "T1", ...
    world: str  # folder with tracks.json (only the public catalog is read)
    log_dir: str  # each replica writes LOG_DIR/<replica>/data.json
    experiment: str | None = None  # None: one arm, events carry no experiment
    seed: int = 0  # the policies' random draws: default_rng([seed, replica rank])
    max_sessions: int = 1024  # open sessions kept per replica
    max_steps: int = 1000  # requests per session before its state starts over


class ApiError(Exception):
    """A request the API refuses: HTTP ``status`` and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class BotifyService:
    """One replica's state: catalog, policies, open sessions, its log file."""

    def __init__(self, config: ServiceConfig, replica: str = "replica-0", rank: int = 0):
        self.catalog = read_catalog(Path(config.world) / TRACKS_JSON)
        self.arms = config.arms
        self.policies = [build_policy(arm, self.catalog) for arm in config.arms]
        self.experiment = config.experiment
        names = arm_names(len(config.arms))
        self.experiments = [{config.experiment: n} if config.experiment else {} for n in names]
        self.labels = {n: arm.label for n, arm in zip(names, config.arms)}
        self.sessions = LiveSessions(self.catalog, config.max_sessions, config.max_steps)
        self.rng = np.random.default_rng([config.seed, rank])
        self.replica = replica
        self.log_path = Path(config.log_dir) / replica / LOG_FILE
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "a", encoding="utf-8")
        self.events = 0

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        """Answer one request: (HTTP status, JSON payload). Never raises for bad input."""
        start = time.perf_counter()
        try:
            return 200, self._route(method, path.split("/")[1:], body, start)
        except ApiError as exc:
            return exc.status, {"message": str(exc)}

    def close(self) -> None:
        """Flush and close the log (idempotent)."""
        if not self.log.closed:
            self.log.close()

    def _route(self, method: str, parts: list[str], body: bytes, start: float) -> dict:
        if parts == [""]:
            _allow(method, "GET", "/")
            return self._alive()
        if len(parts) == 2 and parts[0] == "track":
            _allow(method, "GET", "/track/<track>")
            return self._track(parts[1])
        if len(parts) == 2 and parts[0] in (C.MESSAGE_NEXT, C.MESSAGE_LAST):
            _allow(method, "POST", f"/{parts[0]}/<user>")
            user = _integer(parts[1], "user")
            track, listened = self._body(body)
            if parts[0] == C.MESSAGE_NEXT:
                return self._next(user, track, listened, start)
            return self._last(user, track, listened, start)
        raise ApiError(404, f"no route {method} /{'/'.join(parts)} (botify's API: {_API})")

    def _next(self, user: int, track: int, listened: float, start: float) -> dict:
        arm = self._arm(user)
        rec = self.sessions.next(user, track, listened, self.policies[arm], float(self.rng.random()))
        self._log(C.MESSAGE_NEXT, user, track, listened, start, rec, arm)
        return {"user": user, "track": rec}

    def _last(self, user: int, track: int, listened: float, start: float) -> dict:
        arm = self._arm(user)
        self.sessions.last(user)
        self._log(C.MESSAGE_LAST, user, track, listened, start, None, arm)
        return {"user": user}

    def _arm(self, user: int) -> int:
        if len(self.policies) == 1:
            return 0
        return int(arm_index(np.array([user], dtype=np.int64), self.experiment, len(self.policies))[0])

    def _log(self, message: str, user: int, track: int, listened: float, start: float,
             rec: int | None, arm: int) -> None:
        event = {
            C.MESSAGE: message, C.TIMESTAMP: int(time.time() * 1000), C.USER: user, C.TRACK: track,
            C.TIME: listened, C.LATENCY: time.perf_counter() - start, C.RECOMMENDATION: rec,
            C.EXPERIMENTS: self.experiments[arm],
        }  # fmt: skip
        self.log.write(json.dumps(event) + "\n")
        self.log.flush()  # in the OS before the client sees the response: no line lost on a crash
        self.events += 1

    def _alive(self) -> dict:
        return {"status": "ok", "replica": self.replica, "experiment": self.experiment, "arms": self.labels,
                "tracks": self.catalog.n_tracks, "open_sessions": len(self.sessions), "events": self.events}

    def _track(self, text: str) -> dict:
        track = _integer(text, "track")
        if not 0 <= track < self.catalog.n_tracks:
            raise ApiError(404, f"unknown track {track} (the catalog has tracks 0..{self.catalog.n_tracks - 1})")
        row = self.catalog.tracks.iloc[track]
        return {name: _plain(row[name]) for name in C.CATALOG_COLUMNS}

    def _body(self, body: bytes) -> tuple[int, float]:
        """``{"track": int, "time": float}`` → (track, time); ApiError 400 naming the field."""
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, 'body must be JSON {"track": int, "time": float}') from None
        if not isinstance(obj, dict):
            raise ApiError(400, f'body must be a JSON object {{"track": int, "time": float}}, got {_show(obj)}')
        track, listened = obj.get(C.TRACK), obj.get(C.TIME)
        if isinstance(track, bool) or not isinstance(track, int):
            raise ApiError(400, f"field 'track' must be an integer, got {_show(track)}")
        if not 0 <= track < self.catalog.n_tracks:
            raise ApiError(400, f"field 'track': unknown track {track} "
                                f"(the catalog has tracks 0..{self.catalog.n_tracks - 1})")
        if isinstance(listened, bool) or not isinstance(listened, (int, float)) or not 0 <= listened <= 1:
            raise ApiError(400, f"field 'time' must be a number in [0, 1], got {_show(listened)}")
        return track, float(listened)


def _allow(method: str, expected: str, route: str) -> None:
    if method != expected:
        raise ApiError(405, f"{route} takes {expected}, got {method}")


def _integer(text: str, name: str) -> int:
    if not _INT.fullmatch(text) or not -(2**63) <= int(text) < 2**63:
        raise ApiError(400, f"{name} must be an integer, got {text[:40]!r}")
    return int(text)


def _plain(value):
    """A catalog cell as JSON: numpy scalars → Python, missing genre → None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _show(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
