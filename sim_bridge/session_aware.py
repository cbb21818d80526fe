"""Session-aware serving from per-track lists (botify's item-to-item format).

Next track = the first entry of the *anchor* track's list that was not played in this
session and whose artist is not among the last ``skip_artists`` plays. The anchor is the
session's last liked track (time ≥ ``like_threshold``; the first track is the first anchor,
so a threshold above 1 anchors the whole session on it). Uses only what botify sees: the previous track and its time.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from sim_bridge.catalog import Catalog


class ItemToItem:
    """Per-track lists served session-aware; random when the anchor has no usable entry."""

    name = "i2i"

    def __init__(self, lists: Mapping[int, np.ndarray], catalog: Catalog,
                 like_threshold: float = 0.5, skip_artists: int = 1):
        n = catalog.n_tracks
        self.lists = _table(lists, n)  # [N, L], -1 = no entry
        self.artist_of = catalog.artist_codes
        self.like_threshold, self.skip_artists, self.n_tracks = like_threshold, skip_artists, n
        self.anchor = np.zeros(0, dtype=np.int64)  # per slot of the batch being served

    def recommend(self, batch, slots, u):
        if len(self.anchor) != len(batch.session):
            self.anchor = np.zeros(len(batch.session), dtype=np.int64)
        liked = (batch.step[slots] == 0) | (batch.prev_time[slots] >= self.like_threshold)
        self.anchor[slots[liked]] = batch.prev_track[slots[liked]]
        cand = self.lists[self.anchor[slots]]  # [S, L]
        usable = (cand >= 0) & ~batch.played[slots[:, None], np.maximum(cand, 0)]
        fresh = usable & ~self._recent_artist(batch, slots, cand)
        rows = np.arange(len(slots))
        random = (u * self.n_tracks).astype(np.int64)
        # prefer an entry by a new artist, else any unplayed entry, else a random track
        fallback = np.where(usable.any(axis=1), cand[rows, usable.argmax(axis=1)], random)
        return np.where(fresh.any(axis=1), cand[rows, fresh.argmax(axis=1)], fallback)

    def _recent_artist(self, batch, slots: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """bool [S, L]: the candidate's artist is among the last ``skip_artists`` plays."""
        if self.skip_artists == 0:
            return np.zeros(cand.shape, dtype=bool)
        back = batch.step[slots, None] - np.arange(self.skip_artists)  # history positions
        recent = self.artist_of[batch.history[slots[:, None], np.maximum(back, 0)]]
        recent = np.where(back >= 0, recent, -1)  # [S, skip]
        return (self.artist_of[np.maximum(cand, 0)][:, :, None] == recent[:, None, :]).any(axis=2)


def _table(lists: Mapping[int, np.ndarray], n: int) -> np.ndarray:
    """int32 [n, L]: row t = track t's list, padded with -1; every id must be a catalog track.

    A search builds this table for every serving it simulates, so it is cheap to build: lists of
    one length (what model.infer writes) are stacked in one step rather than row by row, and the
    table is int32 (catalog ids fit): half the memory to fault in (50k × 200 entries).
    """
    keys = np.fromiter(lists.keys(), dtype=np.int64, count=len(lists))
    values = [np.asarray(v, dtype=np.int64) for v in lists.values()]
    width = max((len(v) for v in values), default=1)
    table = np.full((n, max(width, 1)), -1, dtype=np.int32)
    if not values:
        return table
    bad = ValueError(f"item-to-item lists name tracks outside the catalog 0..{n - 1}")
    if keys.min() < 0 or keys.max() >= n:
        raise bad
    if all(len(v) == width for v in values):
        block = np.stack(values)
        if width and (block.min() < 0 or block.max() >= n):
            raise bad
        table[keys] = block
        return table
    for track, recs in zip(keys, values):
        if len(recs) and (recs.min() < 0 or recs.max() >= n):
            raise bad
        table[track, : len(recs)] = recs
    return table
