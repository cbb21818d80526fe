"""botify's TopPop file: the tracks with the most summed listening time in logged data.

``top_tracks.json`` is a JSON list of track ids, most listened first (what botify 2025's
TopPop recommender loads). Ties in summed time go to the smaller track id.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim_bridge import columns as C
from sim_bridge.atomic import atomic_write_text


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
