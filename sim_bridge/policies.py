"""What the service recommends next (docs/listener.md): every policy, and the one factory.

``recommend(batch, slots, u)`` returns one track per slot, given the batch state and one uniform
draw per slot (see :class:`sim_bridge.simulator.Policy`). Policies see public data only, except
two that read the hidden truth and say so: :class:`Oracle`, the reference ceiling, and
``contextual_hidden:K`` (botify's Contextual over lists made from the hidden embeddings).

* baselines: :class:`Random`, :class:`StickyArtist` (the seed's control), :class:`TopPop`;
* lists served by botify's rules: per user :class:`Indexed` and :class:`Sequential`, per track
  :class:`Contextual` (botify 2025) and :class:`BotifyI2I` (botify 2026), and our session-aware
  :class:`ItemToItem` — an exported list deploys unchanged on botify for all but the last;
* the ceiling: :class:`Oracle`.

They are built by name in :mod:`sim_bridge.policy_specs` (CLI specs and serving configs).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from sim_bridge.contract.catalog import Catalog
from sim_bridge.simulator import Policy, listen_time, nearest_by_inner_product

__all__ = ["Policy", "Random", "StickyArtist", "TopPop", "Indexed", "Sequential", "ItemToItem", "Contextual",
           "BotifyI2I", "Oracle", "hidden_item_lists"]


# --------------------------------------------------------------------------- baselines


def _pick(offsets: np.ndarray, sizes: np.ndarray, values: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Uniform choice from ragged lists: ``values[offsets[i] : offsets[i] + sizes[i]]``."""
    return values[offsets + (u * sizes).astype(np.int64)]


class Random:
    """Uniform over the catalog."""

    name = "random"

    def __init__(self, n_tracks: int):
        self.n_tracks = n_tracks

    def recommend(self, batch, slots, u):
        return (u * self.n_tracks).astype(np.int64)


class StickyArtist:
    """Uniform over the previous track's artist (the previous track included, as in the
    seed's control); ``exclude_previous`` leaves it out (single-track artists then go random)."""

    name = "sticky_artist"

    def __init__(self, catalog: Catalog, exclude_previous: bool = False):
        self.artist_of = catalog.artist_codes
        self.tracks_by_artist = np.argsort(self.artist_of, kind="stable")
        self.sizes = np.bincount(self.artist_of)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.exclude_previous = exclude_previous
        self.n_tracks = catalog.n_tracks
        if exclude_previous:
            self.name = "sticky_artist_exclusive"

    def recommend(self, batch, slots, u):
        prev = batch.prev_track[slots]
        artist = self.artist_of[prev]
        if not self.exclude_previous:
            return _pick(self.offsets[artist], self.sizes[artist], self.tracks_by_artist, u)
        size = self.sizes[artist] - 1
        k = (u * size).astype(np.int64)
        k += k >= np.searchsorted(self.tracks_by_artist, prev) - self.offsets[artist]  # skip prev
        out = self.tracks_by_artist[np.minimum(self.offsets[artist] + k, self.n_tracks - 1)]
        alone = size == 0
        out[alone] = (u[alone] * self.n_tracks).astype(np.int64)
        return out


class TopPop:
    """Uniform over the first ``k`` of ``top``: botify's TopPop, the tracks with the most summed
    logged listening time (``top_tracks.json``). Without ``top``, the ``k`` highest catalog
    ``pop`` (ties by track id), named ``toppop_catalog``."""

    name = "toppop"

    def __init__(self, catalog: Catalog, k: int = 100, top: np.ndarray | None = None):
        if top is None:
            self.name = "toppop_catalog"
            top = np.lexsort((np.arange(catalog.n_tracks), -catalog.pop))
        self.top = np.asarray(top, dtype=np.int64)[:k]

    def recommend(self, batch, slots, u):
        return self.top[(u * len(self.top)).astype(np.int64)]


# --------------------------------------------------------------------------- per-user lists (botify's Indexed and Sequential)


class _UserLists:
    """Per-user recommendation lists as one ragged array, looked up by user id."""

    def __init__(self, recs: Mapping[int, np.ndarray], n_tracks: int):
        users = np.array(sorted(u for u, t in recs.items() if len(t) > 0), dtype=np.int64)
        lists = [np.asarray(recs[u], dtype=np.int64) for u in users]
        self.users = users
        self.sizes = np.array([len(t) for t in lists], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.tracks = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
        if len(self.tracks) and (self.tracks.min() < 0 or self.tracks.max() >= n_tracks):
            raise ValueError(f"recommendations name tracks outside the catalog 0..{n_tracks - 1}")

    def rows(self, user_ids: np.ndarray) -> np.ndarray:
        """Row of each user, -1 for users without a list."""
        if len(self.users) == 0:
            return np.full(len(user_ids), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.users, user_ids), len(self.users) - 1)
        return np.where(self.users[pos] == user_ids, pos, -1)


class Indexed:
    """botify's Indexed: uniform from the user's list; random if the user has none."""

    name = "indexed"

    def __init__(self, recs: Mapping[int, np.ndarray], n_tracks: int):
        self.lists = _UserLists(recs, n_tracks)
        self.n_tracks = n_tracks

    def recommend(self, batch, slots, u):
        rows = self.lists.rows(batch.user[slots])
        out = (u * self.n_tracks).astype(np.int64)
        has = rows >= 0
        r = rows[has]
        out[has] = _pick(self.lists.offsets[r], self.lists.sizes[r], self.lists.tracks, u[has])
        return out


class Sequential:
    """The entry after the previous track's position in the user's list (wrapping round);
    the list's first entry when the previous track is not on it; random without a list."""

    name = "sequential"

    def __init__(self, recs: Mapping[int, np.ndarray], n_tracks: int):
        self.lists = _UserLists(recs, n_tracks)
        self.n_tracks = n_tracks
        lists = self.lists
        row = np.repeat(np.arange(len(lists.users)), lists.sizes)
        position = np.arange(len(lists.tracks)) - np.repeat(lists.offsets, lists.sizes)
        keys = row * n_tracks + lists.tracks
        order = np.lexsort((position, keys))  # first occurrence of a repeated track wins
        keys, position = keys[order], position[order]
        first = np.concatenate([[True], keys[1:] != keys[:-1]])
        self.keys, self.position = keys[first], position[first]

    def recommend(self, batch, slots, u):
        rows = self.lists.rows(batch.user[slots])
        out = (u * self.n_tracks).astype(np.int64)
        has = rows >= 0
        r = rows[has]
        key = r * self.n_tracks + batch.prev_track[slots][has]
        at = np.minimum(np.searchsorted(self.keys, key), max(len(self.keys) - 1, 0))
        on_list = self.keys[at] == key
        nxt = np.where(on_list, self.position[at] + 1, 0) % self.lists.sizes[r]
        out[has] = self.lists.tracks[self.lists.offsets[r] + nxt]
        return out


# --------------------------------------------------------------------------- per-track lists: ours, session-aware
# Next track = the first entry of the *anchor* track's list that was not played in this
# session and whose artist is not among the last ``skip_artists`` plays. The anchor is the
# session's last liked track (time ≥ ``like_threshold``; the first track is the first anchor,
# so a threshold above 1 anchors the whole session on it). Uses only what botify sees: the
# previous track and its time.

class ItemToItem:
    """Per-track lists served session-aware; random when the anchor has no usable entry."""

    name = "i2i"

    def __init__(self, lists: Mapping[int, np.ndarray], catalog: Catalog,
                 like_threshold: float = 0.5, skip_artists: int = 1):
        n = catalog.n_tracks
        self.lists = _item_table(lists, n)  # [N, L], -1 = no entry
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


def _item_table(lists: Mapping[int, np.ndarray], n: int) -> np.ndarray:
    """int32 [n, L]: row t = track t's list, padded with -1; every id must be a catalog track.

    Lists that are not a mapping are such a table already, or read like one (``lists[tracks]``
    for an int array of any shape: ``model.infer.ItemNeighbours``, whose rows are computed when
    first read), and are served as they are.

    A search builds this table for every serving it simulates, so it is cheap to build: lists of
    one length (what model.infer writes) are stacked in one step rather than row by row, and the
    table is int32 (catalog ids fit): half the memory to fault in (50k × 200 entries).
    """
    if not isinstance(lists, Mapping):
        if lists.shape[0] != n:
            raise ValueError(f"item-to-item table has {lists.shape[0]} rows for a catalog of {n} tracks")
        return lists
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


# --------------------------------------------------------------------------- per-track lists: botify's own rules
# So an exported per-track list deploys unchanged. Both see only what botify sees: the tracks
# played and their listened times.

class Contextual:
    """botify 2025: uniform from the previous track's list; random without one."""

    name = "contextual"

    def __init__(self, lists: Mapping[int, np.ndarray], n_tracks: int):
        self.lists = _item_table(lists, n_tracks)
        self.n_tracks = n_tracks

    def recommend(self, batch, slots, u):
        rows = self.lists[batch.prev_track[slots]]  # [S, L]
        size = (rows >= 0).sum(axis=1)
        pick = rows[np.arange(len(slots)), np.minimum((u * size).astype(np.int64), np.maximum(size - 1, 0))]
        return np.where(size > 0, pick, (u * self.n_tracks).astype(np.int64))


class BotifyI2I:
    """botify 2026: anchor ∝ summed listened time over the last ``history`` plays; the first
    unheard entry of its list; anchors without one are dropped; random when none is left.

    Drawing among the anchors that have an unheard entry, ∝ their weights, is the same
    distribution as botify's draw-drop-redraw loop, done with one uniform per slot.
    """

    name = "botify_i2i"

    def __init__(self, lists: Mapping[int, np.ndarray], n_tracks: int, history: int = 10):
        self.lists = _item_table(lists, n_tracks)
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


# --------------------------------------------------------------------------- the ceiling (hidden truth)


class Oracle:
    """Reference ceiling (hidden truth): the unplayed track with the highest listen time now,
    among the ``candidates`` tracks nearest to the session's taste. Never a baseline."""

    name = "oracle"

    def __init__(self, world, candidates: int = 300):
        users = world.users
        self.users = users
        self.artist_of = world.catalog.artist_codes
        self.tracks = np.unique(users.interests[users.interests >= 0])
        self.cands = nearest_by_inner_product(world.embeddings, self.tracks, candidates)  # [T, M]
        emb = world.embeddings.astype(np.float64)
        self.dots = np.einsum("tmd,td->tm", emb[self.cands], emb[self.tracks])
        self.n_tracks = world.catalog.n_tracks

    def recommend(self, batch, slots, u):
        rows = np.searchsorted(self.tracks, batch.interest_track[slots])
        cands, dots = self.cands[rows], self.dots[rows]  # [S, M]
        ui = batch.user_index[slots][:, None]
        plays = batch.artist_plays[slots[:, None], self.artist_of[cands]]
        t = listen_time(dots, self.users.consume_bias[ui], self.users.consume_sharpness[ui],
                        self.users.artist_discount_gamma[ui], plays)
        t[batch.played[slots[:, None], cands]] = -1.0
        best = cands[np.arange(len(slots)), t.argmax(axis=1)]
        exhausted = t.max(axis=1) < 0
        best[exhausted] = (u[exhausted] * self.n_tracks).astype(np.int64)
        return best


def hidden_item_lists(world, k: int = 20) -> dict[int, np.ndarray]:
    """Per-track lists of the ``k`` nearest tracks by cosine of the **hidden** embeddings. Reads
    the hidden truth, like the oracle: logs written by a policy serving them hand a model trained
    on those logs what the world's embeddings know (the ``contextual_hidden`` arm)."""
    emb = world.embeddings / np.linalg.norm(world.embeddings, axis=1, keepdims=True)
    near = nearest_by_inner_product(emb, np.arange(len(emb)), k + 1)
    not_self = near != np.arange(len(emb))[:, None]
    return {t: row[keep][:k] for t, (row, keep) in enumerate(zip(near, not_self))}
