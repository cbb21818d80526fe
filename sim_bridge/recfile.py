"""botify recommendation files, JSON lines.

- per user:     ``{"user": 7, "tracks": [12, 40, ...]}``       (botify's ``Indexed`` policy)
- item to item: ``{"item_id": 12, "recommendations": [40, ...]}`` (botify's ``Sequential``/i2i)

Lists keep their order (rank 1 first). Writes are atomic; a malformed line raises
:class:`RecFileError` naming ``file:line`` and the field. Reading is one ``json.loads`` per line
(a 50k × 100 file reads in about a second); writing is one C-level ``json.dumps`` per list.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from sim_bridge import columns as C
from sim_bridge.jsonline import parse_object
from sim_bridge.atomic import atomic_write_text


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
