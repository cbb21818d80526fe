"""The public catalog: track, artist, title, genre, pop (``tracks.json``, JSON lines).

This is everything the model side may know about tracks. Hidden truth (embeddings,
users) lives in :mod:`sim_bridge.world`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.contract.files import atomic_write_text, parse_object


class CatalogError(ValueError):
    """tracks.json is malformed."""


@dataclass(frozen=True)
class Catalog:
    """Tracks ``0..N-1`` with their public attributes, one row per track, ordered by id."""

    tracks: pd.DataFrame  # columns C.CATALOG_COLUMNS; genre may be None

    def __post_init__(self) -> None:
        ids = self.tracks[C.TRACK].to_numpy()
        if not np.array_equal(ids, np.arange(len(ids))):
            raise CatalogError("catalog track ids must be 0..N-1 in order")

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
        """float64 [N]: popularity (play count) of each track."""
        return self.tracks[C.POP].to_numpy(dtype=np.float64)


def read_catalog(path: str | Path) -> Catalog:
    """Read ``tracks.json`` (JSON lines); errors name the file, line and field."""
    path = Path(path)
    rows = []
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                rows.append(_parse_track(line, path, lineno))
    rows.sort(key=lambda r: r[C.TRACK])
    frame = pd.DataFrame(rows, columns=list(C.CATALOG_COLUMNS))
    try:
        return Catalog(frame)
    except CatalogError as exc:
        raise CatalogError(f"{path}: {exc}") from None


_TRACK_FIELDS = ((C.TRACK, int), (C.ARTIST, (str, int)), (C.POP, (int, float)))


def _parse_track(line: str, path: Path, lineno: int) -> dict:
    obj = parse_object(line, f"{path}:{lineno}", (f for f, _ in _TRACK_FIELDS), CatalogError)
    for field, kinds in _TRACK_FIELDS:
        if isinstance(obj[field], bool) or not isinstance(obj[field], kinds):
            raise CatalogError(f"{path}:{lineno}: field '{field}' has the wrong type ({obj[field]!r})")
    return {
        C.TRACK: obj[C.TRACK],
        C.ARTIST: obj[C.ARTIST],
        C.TITLE: obj.get(C.TITLE, ""),
        C.GENRE: obj.get(C.GENRE),
        C.POP: obj[C.POP],
    }


def write_catalog(catalog: Catalog, path: str | Path) -> None:
    """Write ``tracks.json`` atomically; a missing genre is left out of its line."""
    path = Path(path)
    lines = []
    for row in catalog.tracks.itertuples(index=False):
        obj = {C.TRACK: int(row.track), C.ARTIST: row.artist, C.TITLE: row.title}
        if row.genre is not None and not (isinstance(row.genre, float) and np.isnan(row.genre)):
            obj[C.GENRE] = row.genre
        obj[C.POP] = int(row.pop) if float(row.pop).is_integer() else float(row.pop)
        lines.append(json.dumps(obj))
    atomic_write_text(path, "\n".join(lines) + "\n")
