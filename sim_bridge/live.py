"""Serving a batch policy one request at a time, as botify's HTTP API asks for it.

The policies (:mod:`sim_bridge.policies`) serve a batch of
sessions held in a :class:`SessionBatch`. A service answers one request at a time: "user U has
just played track T for a fraction F of it; what next?". :class:`LiveSessions` keeps each user's
open session in one slot of a SessionBatch (the tracks played so far, in order, and the last
time), so the very same policy objects serve over HTTP as in the simulator.

A session opens with the user's first request and closes on ``last``. When every slot holds an
open session, the least recently active one is closed to make room (a client that vanished
without ``last``). A session that reaches ``max_steps`` requests starts over from its current
track. Only public data is set: the hidden ``interest_track`` stays 0, so the oracle cannot be
served this way.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from sim_bridge.contract.catalog import Catalog
from sim_bridge.policies import Policy
from sim_bridge.simulator import SessionBatch


class LiveSessions:
    """Open sessions by user, in the slots of one :class:`SessionBatch` of ``capacity`` slots."""

    def __init__(self, catalog: Catalog, capacity: int = 1024, max_steps: int = 1000):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if not 1 <= max_steps <= 30_000:  # artist play counts are int16
            raise ValueError(f"max_steps must be in 1..30000, got {max_steps}")
        self.artist_of = catalog.artist_codes
        self.n_tracks = catalog.n_tracks
        self.max_steps = max_steps
        self.batch = SessionBatch(capacity, catalog.n_tracks, int(self.artist_of.max()) + 1, max_steps)
        self.slot_of: OrderedDict[int, int] = OrderedDict()  # user → slot, least recently active first
        self.free = list(range(capacity - 1, -1, -1))
        self.opened = 0  # sessions opened so far (a slot's ``session`` number)
        self.evicted = 0  # sessions closed to make room

    def next(self, user: int, track: int, time: float, policy: Policy, u: float) -> int:
        """Record that ``user`` played ``track`` for ``time``; ``policy``'s next track (draw ``u``)."""
        slot = self._play(user, track, time)
        return int(policy.recommend(self.batch, np.array([slot]), np.array([u]))[0])

    def last(self, user: int) -> None:
        """Close ``user``'s session (nothing happens when none is open)."""
        slot = self.slot_of.pop(user, None)
        if slot is not None:
            self._close(slot)

    def __len__(self) -> int:
        """Open sessions."""
        return len(self.slot_of)

    def _play(self, user: int, track: int, time: float) -> int:
        """Append (track, time) to the user's session, opening one if needed; returns its slot."""
        if not 0 <= track < self.n_tracks:
            raise ValueError(f"track {track} is not in the catalog (0..{self.n_tracks - 1})")
        b = self.batch
        slot = self.slot_of.get(user)
        if slot is not None and b.step[slot] >= self.max_steps:  # history is full: start over
            self.last(user)
            slot = None
        if slot is None:
            slot, step = self._open(user), 0
        else:
            self.slot_of.move_to_end(user)
            step = int(b.step[slot]) + 1
        b.step[slot] = step
        b.history[slot, step] = track
        b.played[slot, track] = True
        b.artist_plays[slot, self.artist_of[track]] += 1
        b.prev_track[slot], b.prev_time[slot] = track, time
        return slot

    def _open(self, user: int) -> int:
        if not self.free:  # every slot is taken: close the least recently active session
            _, slot = self.slot_of.popitem(last=False)
            self._close(slot)
            self.evicted += 1
        slot = self.free.pop()
        self.slot_of[user] = slot
        self.batch.session[slot], self.batch.user[slot] = self.opened, user
        self.opened += 1
        return slot

    def _close(self, slot: int) -> None:
        self.batch.clear(np.array([slot]), self.artist_of)
        self.free.append(slot)
