"""The state of a batch of concurrent sessions: what policies may look at each step.

Arrays are indexed by slot; a slot holds one session at a time (``session == -1`` when
free). ``interest_track`` is hidden truth: only the oracle policy reads it.
"""
from __future__ import annotations

import numpy as np


class SessionBatch:
    """Slot arrays for ``size`` concurrent sessions over a catalog of ``n_tracks`` tracks."""

    def __init__(self, size: int, n_tracks: int, n_artists: int, max_steps: int):
        self.session = np.full(size, -1, dtype=np.int64)
        self.user = np.zeros(size, dtype=np.int64)  # user id as logged
        self.user_index = np.zeros(size, dtype=np.int64)
        self.arm = np.zeros(size, dtype=np.int64)
        self.interest_track = np.zeros(size, dtype=np.int64)  # hidden: oracle only
        self.prev_track = np.zeros(size, dtype=np.int64)
        self.prev_time = np.zeros(size, dtype=np.float64)
        self.step = np.zeros(size, dtype=np.int64)  # recommendations served so far
        self.budget = np.zeros(size, dtype=np.int64)
        self.total_time = np.zeros(size, dtype=np.float64)
        self.history = np.zeros((size, max_steps + 1), dtype=np.int64)  # played tracks in order
        self.played = np.zeros((size, n_tracks), dtype=bool)
        self.artist_plays = np.zeros((size, n_artists), dtype=np.int16)  # < max_steps + 1 plays

    @property
    def n_played(self) -> np.ndarray:
        """Tracks played per slot, the first track included."""
        return self.step + 1

    def is_clear(self) -> bool:
        """No slot holds a session and no cell is set: the batch can serve another run."""
        return bool((self.session < 0).all() and not self.played.any() and not self.artist_plays.any())

    def clear(self, slots: np.ndarray, artist_of: np.ndarray) -> None:
        """Forget the sessions in ``slots``, touching only the cells they set."""
        lengths = self.n_played[slots]
        width = int(lengths.max())
        mask = np.arange(width) < lengths[:, None]
        rows = np.repeat(slots, lengths)
        tracks = self.history[slots, :width][mask]
        self.played[rows, tracks] = False
        self.artist_plays[rows, artist_of[tracks]] = 0
        self.session[slots] = -1
