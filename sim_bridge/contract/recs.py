"""Recommendation files (botify JSON lines), botify's ``top_tracks.json``, and how lists are served.

Recommendation files:

- per user:     ``{"user": 7, "tracks": [12, 40, ...]}``       (botify's ``Indexed`` policy)
- item to item: ``{"item_id": 12, "recommendations": [40, ...]}`` (botify's ``Sequential``/i2i)

Lists keep their order (rank 1 first). Writes are atomic; a malformed line raises
:class:`RecFileError` naming ``file:line`` and the field. Reading is one ``json.loads`` per line;
writing is one C-level ``json.dumps`` per list.

``top_tracks.json`` is a JSON list of track ids, most listened first (what botify 2025's TopPop
recommender loads). :class:`ServingConfig` names the rule that serves a model's lists; the rules
themselves are :mod:`sim_bridge.policies` (one factory, :func:`sim_bridge.policy_specs.serving_policy`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.contract.files import ConfigError, atomic_write_text, parse_object


class RecFileError(ValueError):
    """A recommendation file is malformed; the message names the file, the line and the field."""


RecsLike = Mapping[int, np.ndarray] | pd.DataFrame


def write_user_recs(recs: RecsLike, path: str | Path) -> None:
    """Write per-user recommendations ``{"user": id, "tracks": [...]}``, one line per user.

    ``recs`` is ``{user: tracks}`` or a DataFrame with columns ``user`` and ``tracks`` (lists),
    or a long frame with columns ``user`` and ``track`` (one row per item, in rank order).
    """
    _write(_as_mapping(recs, C.USER, C.REC_TRACKS), path, C.USER, C.REC_TRACKS)


def write_item_recs(recs: RecsLike, path: str | Path) -> None:
    """Write item-to-item recommendations ``{"item_id": t, "recommendations": [...]}``.

    ``recs`` is ``{item: tracks}`` or a DataFrame with columns ``item_id`` and
    ``recommendations`` (lists), or a long frame with columns ``item_id`` and ``track``.
    """
    _write(_as_mapping(recs, C.ITEM_ID, C.ITEM_RECOMMENDATIONS), path, C.ITEM_ID, C.ITEM_RECOMMENDATIONS)


def read_user_recs(path: str | Path) -> dict[int, np.ndarray]:
    """``{user: int64 tracks}`` from a per-user recommendation file."""
    return _read(Path(path), C.USER, C.REC_TRACKS)


def read_item_recs(path: str | Path) -> dict[int, np.ndarray]:
    """``{item: int64 tracks}`` from an item-to-item recommendation file."""
    return _read(Path(path), C.ITEM_ID, C.ITEM_RECOMMENDATIONS)


def _as_mapping(recs: RecsLike, key: str, field: str) -> dict[int, np.ndarray]:
    if not isinstance(recs, pd.DataFrame):
        return {int(k): np.asarray(v) for k, v in recs.items()}
    if field in recs.columns:
        return {int(k): np.asarray(v) for k, v in zip(recs[key].to_numpy(), recs[field])}
    if C.TRACK in recs.columns:
        groups = recs.groupby(key, sort=False)[C.TRACK]
        return {int(k): v.to_numpy() for k, v in groups}
    raise ValueError(f"recommendation frame needs columns {key!r} and {field!r} (or {C.TRACK!r})")


def _write(recs: dict[int, np.ndarray], path: str | Path, key: str, field: str) -> None:
    keys = np.fromiter(recs.keys(), dtype=np.int64, count=len(recs))
    lists = list(recs.values())
    for k, v in zip(keys, lists):
        if v.ndim != 1 or (v.size and v.dtype.kind not in "iu"):
            raise ValueError(f"recommendations of {key} {k} must be a 1-D integer array, got {v.dtype} {v.shape}")
    # json.dumps of a list of python ints is C code: "[1, 2, 3]", botify's spacing
    head, mid = f'{{"{key}": ', f', "{field}": '
    text = "".join(
        f"{head}{k}{mid}{json.dumps(v.astype(np.int64).tolist())}}}\n" for k, v in zip(keys.tolist(), lists)
    )
    atomic_write_text(path, text)


def _read(path: Path, key: str, field: str) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                where = f"{path}:{lineno}"
                k, v = _parse(line, where, key, field)
                if k in out:
                    raise RecFileError(f"{where}: field '{key}' repeats {k}")
                out[k] = v
    return out


def _parse(line: str, where: str, key: str, field: str) -> tuple[int, np.ndarray]:
    obj = parse_object(line, where, (key, field), RecFileError)
    k = obj[key]
    if isinstance(k, bool) or not isinstance(k, int):
        raise RecFileError(f"{where}: field '{key}' must be an integer, got {json.dumps(k)[:60]}")
    items = obj[field]
    try:
        values = np.asarray(items) if isinstance(items, list) else None
    except ValueError:  # ragged nesting
        values = None
    if values is None or (values.size and values.dtype.kind != "i") or values.ndim != 1:
        raise RecFileError(f"{where}: field '{field}' must be a list of integers, got {json.dumps(items)[:60]}")
    return k, values.astype(np.int64)


# --------------------------------------------------------------------------- top_tracks.json
# botify's TopPop file: the tracks with the most summed listening time in logged data; ties in
# summed time go to the smaller track id.


def top_tracks_by_time(events: pd.DataFrame, k: int = 100) -> np.ndarray:
    """The ``k`` tracks with the most summed ``time`` over the logged events."""
    total = events.groupby(C.TRACK, sort=True)[C.TIME].sum()
    order = np.lexsort((total.index.to_numpy(), -total.to_numpy()))
    return total.index.to_numpy()[order[:k]].astype(np.int64)


def write_top_tracks(tracks: np.ndarray, path: str | Path) -> None:
    """Write ``tracks`` as botify's ``top_tracks.json`` (atomically)."""
    atomic_write_text(Path(path), json.dumps([int(t) for t in tracks]) + "\n")


def read_top_tracks(path: str | Path) -> np.ndarray:
    """Track ids from a ``top_tracks.json``; a malformed file raises ValueError naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: expected a JSON list of track ids ({exc})") from None
    if not isinstance(data, list) or not data or not all(isinstance(t, int) and not isinstance(t, bool)
                                                          and t >= 0 for t in data):
        raise ValueError(f"{path}: expected a non-empty JSON list of track ids (non-negative integers)")
    return np.array(data, dtype=np.int64)


# --------------------------------------------------------------------------- serving
# How a trained model's lists are served to listeners (a searchable choice):
#
# * ``indexed``: uniform from the user's top-``k`` list (botify's Indexed — how the seed served);
# * ``sequential``: the user's list in order (botify's Sequential);
# * ``i2i``: session-aware — per-track lists of the nearest items by the DSSM's item embeddings,
#   served from the session's last liked track, skipping played tracks and the artists just
#   played (``sim_bridge.policies.ItemToItem``; botify's item-to-item file format). This rule is
#   this project's own: botify has no such recommender;
# * ``contextual``: the same per-track lists served by botify 2025's Contextual rule (uniform
#   from the previous track's list);
# * ``botify_i2i``: the same per-track lists served by botify 2026's I2I rule (anchor drawn from
#   the recent listens by listened time, first unheard entry).


SERVING_POLICIES = ("indexed", "sequential", "i2i", "contextual", "botify_i2i")
ITEM_LIST_POLICIES = ("i2i", "contextual", "botify_i2i")  # served from per-track lists


@dataclass
class ServingConfig:
    policy: str = "indexed"
    k: int = 100  # list length: per user (indexed/sequential) or per track (i2i)
    like_threshold: float = 0.5  # i2i: a track played at least this long becomes the anchor
    skip_artists: int = 1  # i2i: skip entries by the artists of the last n plays

    @property
    def needs_item_lists(self) -> bool:
        """True when the policy serves per-track (item-to-item) lists."""
        return self.policy in ITEM_LIST_POLICIES

    def __post_init__(self) -> None:
        if self.policy not in SERVING_POLICIES:
            raise ConfigError(f"serving.policy: expected one of {SERVING_POLICIES}, got {self.policy!r}")
        if self.k < 1:
            raise ConfigError(f"serving.k: must be >= 1, got {self.k}")
        if self.skip_artists < 0:
            raise ConfigError(f"serving.skip_artists: must be >= 0, got {self.skip_artists}")
