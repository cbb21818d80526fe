"""botify events in memory: event frames built from the simulator's arrays, each event's arm in an
experiment, and the events grouped into sessions. Their files are :mod:`sim_bridge.contract.logs`.

Event frames hold columns :data:`columns.EVENT_COLUMNS` with dtypes: message str,
timestamp/user/track int64, time/latency float64, recommendation nullable ``Int64`` (``<NA>``
on "last"), experiments python dicts. Rows with the same assignment may share one dict object:
treat the dicts as read-only.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C


def build_events(
    session: np.ndarray,
    user: np.ndarray,
    track: np.ndarray,
    time: np.ndarray,
    recommendation: np.ndarray,
    timestamp: np.ndarray,
    latency: np.ndarray,
    arm: np.ndarray,
    experiment: str,
    arm_names: list[str] | None = None,
) -> pd.DataFrame:
    """Event frame from the simulator's per-event arrays (all of length n).

    ``recommendation == -1`` marks a session's final request: its message is "last" and its
    recommendation ``<NA>``; every other event is "next". ``arm`` holds arm names ("C", "T1",
    ...), or integer codes into ``arm_names``. Returns :data:`columns.EVENT_COLUMNS` plus the
    convenience columns ``session`` and ``arm``; experiments is ``{experiment: arm}``.
    """
    arrays = [session, user, track, time, recommendation, timestamp, latency, arm]
    n = len(user)
    if any(len(a) != n for a in arrays):
        raise ValueError(f"build_events: arrays differ in length: {[len(a) for a in arrays]}")
    if arm_names is None:
        codes, names = pd.factorize(np.asarray(arm, dtype=object))
    else:
        codes, names = np.asarray(arm, dtype=np.int64), arm_names
    names = [str(a) for a in names]
    rec = np.asarray(recommendation, dtype=np.int64)
    frame = pd.DataFrame(
        {
            C.MESSAGE: np.where(rec == -1, C.MESSAGE_LAST, C.MESSAGE_NEXT),
            C.TIMESTAMP: np.asarray(timestamp, dtype=np.int64),
            C.USER: np.asarray(user, dtype=np.int64),
            C.TRACK: np.asarray(track, dtype=np.int64),
            C.TIME: np.asarray(time, dtype=np.float64),
            C.LATENCY: np.asarray(latency, dtype=np.float64),
            C.RECOMMENDATION: pd.array(rec, dtype="Int64"),
            C.EXPERIMENTS: shared_dicts(codes, [{experiment: a} for a in names]),
            C.SESSION: np.asarray(session, dtype=np.int64),
            C.ARM: np.asarray(names + [""], dtype=object)[codes],
        }
    )
    frame.loc[rec == -1, C.RECOMMENDATION] = pd.NA
    frame[C.MESSAGE] = frame[C.MESSAGE].astype("str")
    frame[C.ARM] = frame[C.ARM].astype("str")
    return frame


def experiments_codes(values: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Group an object array of experiment dicts (``None`` = ``{}``) without a per-row dumps.

    Returns ``codes`` (int64 [n]) and the distinct dicts, by content (``uniques[codes[i]]``
    equals ``values[i]``). Rows sharing one dict object are hashed once.
    """
    values = np.asarray(values, dtype=object)
    ids = np.fromiter(map(id, values), dtype=np.uint64, count=len(values))
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    texts = []
    for i in first:
        value = values[i]
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"experiments must be dicts, got {value!r} in row {i}")
        texts.append(json.dumps(value or {}))
    text_codes, unique_texts = pd.factorize(np.asarray(texts, dtype=object))
    uniques = [json.loads(t) for t in unique_texts]
    return text_codes[inverse].astype(np.int64), uniques


def experiment_arms(events: pd.DataFrame, experiment: str | None) -> np.ndarray:
    """object [n]: each event's arm in ``experiment`` ("" when absent or experiment is None)."""
    n = len(events)
    if experiment is None or n == 0:
        return np.full(n, "", dtype=object)
    codes, uniques = experiments_codes(events[C.EXPERIMENTS].to_numpy(dtype=object))
    arms = np.array([str(d.get(experiment) or "") for d in uniques] + [None], dtype=object)
    return arms[:-1][codes]


def shared_dicts(codes: np.ndarray, dicts: list[dict]) -> np.ndarray:
    """object [n]: ``dicts[codes[i]]``; rows with equal codes share one dict object."""
    table = np.empty(len(dicts), dtype=object)
    table[:] = dicts
    return table[np.asarray(codes, dtype=np.int64)]


def session_order(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(order, session): the events' rows by user, then timestamp (stable: ties keep file
    order), and the session number 0.. of each row in that order. A session closes at a "last"
    event; a user's trailing events without one form an open final session."""
    user = events[C.USER].to_numpy(dtype=np.int64)
    order = np.argsort(events[C.TIMESTAMP].to_numpy(dtype=np.int64), kind="stable")
    order = order[np.argsort(user[order], kind="stable")]
    user = user[order]
    is_last = (events[C.MESSAGE] == C.MESSAGE_LAST).to_numpy(dtype=bool)[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = (user[1:] != user[:-1]) | is_last[:-1]
    return order, np.cumsum(start) - 1


def sessionize(events: pd.DataFrame, experiment: str | None = None) -> pd.DataFrame:
    """Per-session table from events: session, user, arm, time, tracks, latency, truncated.

    Each user's events are ordered by timestamp (stable: ties keep file order) and a session
    closes at a "last" event. Trailing events of a user with no "last" form an open final
    session, which is counted like any other (a log cut mid-session). ``time`` and
    ``latency`` are sums over the session's events, ``tracks`` its number of events; ``arm``
    is ``experiments[experiment]`` of its first event ("" when absent or experiment is None);
    ``truncated`` is always False. Sessions are numbered 0.. in (user, first timestamp) order.
    """
    order, sid = session_order(events)
    user = events[C.USER].to_numpy(dtype=np.int64)[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = sid[1:] != sid[:-1]
    n_sessions = int(start.sum())

    def total(name: str) -> np.ndarray:
        return np.bincount(sid, weights=events[name].to_numpy(dtype=np.float64)[order], minlength=n_sessions)

    return pd.DataFrame(
        {
            C.SESSION: np.arange(n_sessions, dtype=np.int64),
            C.USER: user[start],
            C.ARM: pd.Series(experiment_arms(events, experiment)[order][start], dtype="str"),
            C.TIME: total(C.TIME),
            C.TRACKS: np.bincount(sid, minlength=n_sessions).astype(np.int64),
            C.LATENCY: total(C.LATENCY),
            C.TRUNCATED: np.zeros(n_sessions, dtype=bool),
        }
    )
