"""botify's own item-to-item serving rules, so an exported per-track list deploys unchanged.

* :class:`Contextual` (botify 2025 ``Contextual``): the anchor is the previous track; the next
  track is uniform from the anchor's list; random when the anchor has no list.
* :class:`BotifyI2I` (botify 2026 ``I2IRecommender``): the anchor is drawn from the user's
  recent listens (the last ``history`` plays) with probability ∝ the track's summed listened
  time there; the next track is the first entry of the anchor's list not yet heard; an anchor
  without such an entry is dropped and another drawn; random when none is left.

Both see only what botify sees: the tracks played and their listened times.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np


def dense_lists(lists: Mapping[int, np.ndarray], n_tracks: int) -> np.ndarray:
    """Per-track lists as an int64 [N, L] matrix, left-packed, -1 where there is no entry."""
    width = max((len(v) for v in lists.values()), default=1)
    out = np.full((n_tracks, max(width, 1)), -1, dtype=np.int64)
    for track, recs in lists.items():
        recs = np.asarray(recs, dtype=np.int64)
        if not 0 <= track < n_tracks or (len(recs) and (recs.min() < 0 or recs.max() >= n_tracks)):
            raise ValueError(f"item-to-item lists name tracks outside the catalog 0..{n_tracks - 1}")
        out[track, : len(recs)] = recs
    return out


class Contextual:
    """botify 2025: uniform from the previous track's list; random without one."""

    name = "contextual"

    def __init__(self, lists: Mapping[int, np.ndarray], n_tracks: int):
        self.lists = dense_lists(lists, n_tracks)
        self.sizes = (self.lists >= 0).sum(axis=1)
        self.n_tracks = n_tracks

    def recommend(self, batch, slots, u):
        prev = batch.prev_track[slots]
        size = self.sizes[prev]
        pick = self.lists[prev, np.minimum((u * size).astype(np.int64), np.maximum(size - 1, 0))]
        return np.where(size > 0, pick, (u * self.n_tracks).astype(np.int64))


class BotifyI2I:
    """botify 2026: anchor ∝ summed listened time over the last ``history`` plays; the first
    unheard entry of its list; anchors without one are dropped; random when none is left.

    Drawing among the anchors that have an unheard entry, ∝ their weights, is the same
    distribution as botify's draw-drop-redraw loop, done with one uniform per slot.
    """

    name = "botify_i2i"

    def __init__(self, lists: Mapping[int, np.ndarray], n_tracks: int, history: int = 10):
        self.lists = dense_lists(lists, n_tracks)
        self.n_tracks, self.history = n_tracks, history
        self.times = np.zeros((0, 0))  # [slots, max plays]: listened time of each play so far

    def recommend(self, batch, slots, u):
        if self.times.shape != batch.history.shape:
            self.times = np.zeros(batch.history.shape)
        step = batch.step[slots]
        self.times[slots, step] = batch.prev_time[slots]  # the play the listener just finished
        pos = step[:, None] - np.arange(self.history)[::-1]  # [S, H] positions, oldest first
        valid = pos >= 0
        tracks = np.where(valid, batch.history[slots[:, None], np.maximum(pos, 0)], -1)
        times = np.where(valid, self.times[slots[:, None], np.maximum(pos, 0)], 0.0)
        same = (tracks[:, :, None] == tracks[:, None, :]) & valid[:, :, None]  # [S, H, H]
        weight = (same * times[:, None, :]).sum(axis=2)  # summed time of each position's track
        first = valid & ~np.tril(same, k=-1).any(axis=2)  # count each distinct track once
        cand = self.lists[np.maximum(tracks, 0)]  # [S, H, L]
        unheard = (cand >= 0) & ~batch.played[slots[:, None, None], np.maximum(cand, 0)]
        w = np.where(first & unheard.any(axis=2), weight, 0.0)
        cum = np.cumsum(w, axis=1)
        total = cum[:, -1]
        anchor = (cum > (u * total)[:, None]).argmax(axis=1)
        rows = np.arange(len(slots))
        pick = cand[rows, anchor, unheard[rows, anchor].argmax(axis=1)]
        return np.where(total > 0, pick, (u * self.n_tracks).astype(np.int64))
