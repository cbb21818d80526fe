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

What each arm serves is named on the command line by one of:

* a search experiment folder (``search.run`` output): its best finished trial by the run's
  objective, or ``--trial ID``, served from the trial's checkpoint;
* a ``search.export`` folder: ``config.yaml`` beside ``recommendations.json`` (and
  ``item_recommendations.json`` when the trial serves per-track lists);
* a policy spec of ``python -m sim_bridge`` (``sticky_artist``, ``random``, ``toppop``,
  ``indexed:RECS.json``, ``i2i:ITEM_RECS.json:LIKE:SKIP``, ...).

A trial is served exactly as it was searched: its lists and its ``serving`` settings go through
``serving_policy``, the factory the search's own A/B tests use. The driver resolves arms
(:func:`resolve_arm`, cheap, with one-line errors); each replica builds its policies from them
(:func:`build_policy`).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim_bridge.contract import columns as C
from sim_bridge.abtest import arm_index, arm_names
from sim_bridge.contract.catalog import Catalog, read_catalog, track_row
from sim_bridge.live import LiveSessions
from sim_bridge.policies import Policy
from sim_bridge.policy_specs import make_policy, policy_spec
from sim_bridge.world import TRACKS_JSON

from search import experiment, trials
from search.errors import SearchError

LOG_FILE = "data.json"

_INT = re.compile(r"-?[0-9]{1,19}")
_API = "POST /next/<user>, POST /last/<user>, GET /, GET /track/<track>"


# ---------------------------------------------------------------- arms


class ArmError(SearchError, ValueError):
    """An arm cannot be served; the message names the argument or file and what was expected."""


@dataclass(frozen=True)
class Arm:
    """One arm: a sim_bridge policy ``spec``, or a ``folder`` holding a trial's config and lists."""

    label: str  # shown by GET / and in tables, e.g. "i2i(like ≥ 0.50, skip 1) of trial 1a2b"
    spec: str | None = None
    folder: str | None = None
    world: str | None = None  # the world the trial was searched in, when recorded


@dataclass(frozen=True)
class _CatalogOnly:
    """What a served policy may see of the world: the public catalog (no hidden truth)."""

    catalog: Catalog


def resolve_arm(text: str, trial: str | None = None) -> Arm:
    """An :class:`Arm` from a folder or a policy spec (see the module docstring)."""
    path = Path(text)
    if path.is_dir():
        if (path / experiment.CONFIG_FILE).is_file() and (path / experiment.USER_RECS_JSON).is_file():
            if trial is not None:
                raise ArmError(f"--trial {trial}: {path} is an exported trial, not a search experiment")
            return Arm(f"{_serving_label(path)} from {path}", folder=str(path.resolve()))
        return _experiment_arm(path.resolve(), trial)
    if text.partition(":")[0] == "oracle":
        raise ArmError("the oracle reads the simulator's hidden truth and cannot be served")
    if ":" not in text and ("/" in text or text.startswith(".")):
        raise ArmError(f"{text}: no such folder (expected a search experiment, an export folder or a policy)")
    return Arm(text, spec=text)


def build_policy(arm: Arm, catalog: Catalog) -> Policy:
    """The arm's policy over ``catalog`` (raises ValueError naming the file on bad input)."""
    if arm.spec is not None:
        return make_policy(arm.spec, _CatalogOnly(catalog))
    return experiment.trial_policy(Path(arm.folder), catalog)


def _serving_label(folder: Path) -> str:
    return policy_spec(experiment.served_config(folder).serving)


def _experiment_arm(exp_dir: Path, trial: str | None) -> Arm:
    """The best finished trial of a search experiment (or ``trial``), served from its checkpoint."""
    row = _pick_trial(exp_dir, trial)
    ckpt = row["checkpoint"]
    if not isinstance(ckpt, str) or not (Path(ckpt) / experiment.RECS_FILE).is_file():
        raise ArmError(f"trial {row['trial_id']} of {exp_dir} has no checkpoint with {experiment.RECS_FILE} "
                       f"(status {row['status']})")
    world = _recorded_world(exp_dir)
    label = f"{_serving_label(Path(ckpt))} of trial {row['trial_id']}"
    return Arm(label, folder=ckpt, world=world)


def _pick_trial(exp_dir: Path, trial: str | None):
    try:
        frame = trials.load_trials(exp_dir)
        obj = experiment.run_objective(experiment.read_run_file(exp_dir))
    except SearchError as exc:
        raise ArmError(f"{exc}; expected a search experiment or an export folder "
                       f"({experiment.CONFIG_FILE} + {experiment.USER_RECS_JSON})") from None
    try:
        return trials.pick(frame, trial, obj)
    except SearchError as exc:
        raise ArmError(f"{exp_dir}: {exc}") from None


def _recorded_world(exp_dir: Path) -> str | None:
    """The world the search ran on: ``smoke``, an absolute folder that still exists, or None."""
    settings = experiment.read_run_file(exp_dir)
    if settings.get("smoke_test"):
        return "smoke"
    try:
        world = experiment.stored_path(settings, "world", exp_dir, hint=", or pass --world")
    except SearchError as exc:
        raise ArmError(str(exc)) from None
    return str(world) if world is not None else None


def resolve_world(arms: list[Arm], override: Path | None) -> tuple[Path, str]:
    """The world folder whose ``tracks.json`` the service serves from, and where that choice came from.

    ``--world`` wins; else the world the arms' search recorded (arms from different worlds are
    refused); else the built-in default world.
    """
    from sim_bridge import defaults

    recorded = {a.world for a in arms if a.world is not None}
    if override is not None:
        return override, "--world"
    if len(recorded) > 1:
        raise ArmError(f"the arms were searched in different worlds ({', '.join(sorted(recorded))}); "
                       "pass --world")
    if recorded:
        world = recorded.pop()
        if world == "smoke":
            return Path(defaults.ensure_smoke_world()), "the search's (smoke) world"
        if not Path(world).is_dir():
            raise ArmError(f"the search's world {world} is gone; pass --world")
        return Path(world), "the search's world"
    return Path(defaults.ensure_default_world()), "the built-in world (pass --world for another)"


# ---------------------------------------------------------------- the service


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
        return track_row(self.catalog, track)

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


def _show(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
