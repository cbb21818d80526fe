"""The public catalog, ``tracks.json`` (JSON lines) in the course's schema (docs/formats.md).

One line per track::

    {"artist": "Кино", "album": "Группа крови", "title": "Кукушка", "genre": [1, 47],
     "pop": 2.37, "duration": 231, "track": 1}

``genre`` is a list of integer genre ids, ``pop`` a standardised float (any real number),
``album`` and ``duration`` (seconds) optional and carried through. Worlds written before this
schema (``genre`` a string such as ``"genre_03"`` or ``"pop|rock"``, or absent; ``pop`` a play
count) still read: their genre names become integer ids by rank among the file's sorted names,
so the multi-hot columns the model builds keep their order.

This is everything the model side may know about tracks. Hidden truth (embeddings, users)
lives in :mod:`sim_bridge.world`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.contract.files import atomic_write_text, parse_object


class CatalogError(ValueError):
    """tracks.json is malformed."""


@dataclass(frozen=True)
class Catalog:
    """Tracks ``0..N-1`` with their public attributes, one row per track, ordered by id.

    ``tracks`` has the columns ``C.CATALOG_COLUMNS``; its ``genre`` column is normalised on
    construction to a tuple of int ids per track (legacy names and missing labels converted,
    see the module's docstring); ``album`` and ``duration`` are None where the source has none.
    """

    tracks: pd.DataFrame

    def __post_init__(self) -> None:
        ids = self.tracks[C.TRACK].to_numpy()
        if not np.array_equal(ids, np.arange(len(ids))):
            raise CatalogError("catalog track ids must be 0..N-1 in order")
        frame = self.tracks.reindex(columns=list(C.CATALOG_COLUMNS))
        frame[C.GENRE] = genre_ids(frame[C.GENRE].tolist())
        for column in (C.ALBUM, C.DURATION):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        frame[C.TITLE] = frame[C.TITLE].fillna("")
        object.__setattr__(self, "tracks", frame)

    @property
    def n_tracks(self) -> int:
        return len(self.tracks)

    @cached_property
    def artist_codes(self) -> np.ndarray:
        """int32 [N]: artist of each track as a dense code 0..A-1."""
        codes, _ = pd.factorize(self.tracks[C.ARTIST], sort=True)
        return codes.astype(np.int32)

    @property
    def pop(self) -> np.ndarray:
        """float64 [N]: popularity as the catalog gives it (the course's standardised float;
        a play count in worlds written before)."""
        return self.tracks[C.POP].to_numpy(dtype=np.float64)

    @property
    def genres(self) -> list[tuple[int, ...]]:
        """Each track's genre ids, as given (order kept; empty where a legacy file had none)."""
        return self.tracks[C.GENRE].tolist()


def genre_ids(values: Iterable[Any]) -> list[tuple[int, ...]]:
    """Each track's genre as a tuple of int ids.

    A list (or tuple, or array) of ints is kept as it is; ``None``/NaN/"" is ``()``; legacy
    names (strings, ``|`` separating several) become ids by rank among all the names given,
    sorted — ``"genre_00"…"genre_14"`` become 0…14."""
    values = list(values)
    names = sorted({n for v in values if isinstance(v, str) for n in v.split("|") if n})
    rank = {n: i for i, n in enumerate(names)}
    out = []
    for v in values:
        if isinstance(v, str):
            out.append(tuple(rank[n] for n in v.split("|") if n))
        elif v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(())
        else:
            out.append(tuple(int(g) for g in v))
    return out


def read_catalog(path: str | Path) -> Catalog:
    """Read ``tracks.json`` (JSON lines); errors name the file, line and field."""
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                rows.append(_parse_track(line, f"{path}:{lineno}"))
    if not rows:
        raise CatalogError(f"{path}: no tracks")
    rows.sort(key=lambda r: r[C.TRACK])
    try:
        return Catalog(pd.DataFrame(rows, columns=list(C.CATALOG_COLUMNS)))
    except CatalogError as exc:
        raise CatalogError(f"{path}: {exc}") from None


def _parse_track(line: str, where: str) -> dict:
    obj = parse_object(line, where, (C.TRACK, C.ARTIST, C.POP), CatalogError)
    return {
        C.TRACK: _field(obj, C.TRACK, where, _is_int, "a non-negative integer"),
        C.ARTIST: _field(obj, C.ARTIST, where, lambda v: isinstance(v, str) or _is_int(v), "a string"),
        C.ALBUM: _field(obj, C.ALBUM, where, lambda v: v is None or isinstance(v, str), "a string"),
        C.TITLE: _field(obj, C.TITLE, where, lambda v: v is None or isinstance(v, str), "a string") or "",
        C.GENRE: _genre(obj.get(C.GENRE), where),
        C.POP: _field(obj, C.POP, where, _is_real, "a finite number"),
        C.DURATION: _field(obj, C.DURATION, where, lambda v: v is None or (_is_real(v) and v >= 0),
                           "a non-negative number of seconds"),
    }


def _field(obj: dict, name: str, where: str, ok, expected: str):
    value = obj.get(name)
    if not ok(value):
        raise CatalogError(f"{where}: {name}: expected {expected}, got {json.dumps(value, ensure_ascii=False)}")
    return value


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _genre(value, where: str):
    """A list of int ids as given; a legacy name string (or none) is converted by :func:`genre_ids`
    once the whole file is read. A string that looks like a list is read as one."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass  # reported below as what it is
    if value is None or isinstance(value, str) and not value.lstrip().startswith("["):
        return value
    if isinstance(value, list) and all(_is_int(g) for g in value):
        return tuple(value)
    raise CatalogError(f"{where}: genre: expected a list of integer genre ids, "
                       f"got {json.dumps(value, ensure_ascii=False)}")


def write_catalog(catalog: Catalog, path: str | Path) -> None:
    """Write ``tracks.json`` atomically in the course's schema and field order (``album`` and
    ``duration`` only where the catalog has them)."""
    lines = [json.dumps(_track_object(row), ensure_ascii=False) for row in catalog.tracks.itertuples(index=False)]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _track_object(row) -> dict:
    obj: dict = {C.ARTIST: row.artist}
    if row.album is not None:
        obj[C.ALBUM] = row.album
    obj[C.TITLE] = row.title
    obj[C.GENRE] = list(row.genre)
    obj[C.POP] = _number(row.pop)
    if row.duration is not None:
        obj[C.DURATION] = _number(row.duration)
    obj[C.TRACK] = int(row.track)
    return obj


def _number(value) -> int | float:
    value = float(value)
    return int(value) if value.is_integer() else value


def track_row(catalog: Catalog, track: int) -> dict:
    """One track's catalog line as a JSON-ready dict (what botify's ``GET /track/<id>`` returns)."""
    return _track_object(next(catalog.tracks.iloc[[track]].itertuples(index=False)))
