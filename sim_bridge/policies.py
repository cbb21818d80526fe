"""What the service recommends next (docs/listener.md). Each policy serves a whole batch at once.

``recommend(batch, slots, u)`` returns one track per slot, given the batch state and one
uniform draw per slot (from the simulator's counter-based stream, so a policy's choices are
a pure function of the session, the step and the state). Policies see public data only,
except :class:`Oracle`, the reference ceiling, which reads the hidden truth.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Protocol

import numpy as np

from sim_bridge.catalog import Catalog
from sim_bridge.listener import listen_time
from sim_bridge.session_batch import SessionBatch


class Policy(Protocol):
    name: str

    def recommend(self, batch: SessionBatch, slots: np.ndarray, u: np.ndarray) -> np.ndarray: ...


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


class Oracle:
    """Reference ceiling (hidden truth): the unplayed track with the highest listen time now,
    among the ``candidates`` tracks nearest to the session's taste. Never a baseline."""

    name = "oracle"

    def __init__(self, world, candidates: int = 300):
        from sim_bridge.starts import nearest_by_inner_product

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


def catalog_item_lists(world, k: int = 20) -> dict[int, np.ndarray]:
    """Per-track lists of the ``k`` nearest tracks by cosine of the hidden embeddings — the kind
    of item-to-item file a course ships with its catalog (made from its own embeddings). Reads
    hidden truth: for simulated logging runs, like the oracle."""
    from sim_bridge.starts import nearest_by_inner_product

    emb = world.embeddings / np.linalg.norm(world.embeddings, axis=1, keepdims=True)
    near = nearest_by_inner_product(emb, np.arange(len(emb)), k + 1)
    not_self = near != np.arange(len(emb))[:, None]
    return {t: row[keep][:k] for t, (row, keep) in enumerate(zip(near, not_self))}


BASELINES = ("random", "sticky_artist", "sticky_artist_exclusive", "toppop", "toppop_catalog")


def make_policy(spec: str, world) -> Policy:
    """Build a policy from its CLI spec: a name, ``toppop[:TOP_TRACKS.json]`` (logged TopPop: the
    world folder's ``top_tracks.json`` or the file given), ``toppop_catalog[:K]``,
    ``indexed:RECS.json`` / ``sequential:RECS.json`` (per-user lists), or per-track lists served
    by botify's rules (``contextual:ITEM_RECS.json``, ``botify_i2i:ITEM_RECS.json``) or by our
    session-aware rule ``i2i:ITEM_RECS.json[:LIKE:SKIP]`` (like_threshold LIKE and skip_artists
    SKIP; default 0.5 and 1)."""
    catalog = world.catalog
    name, _, arg = spec.partition(":")
    if name == "random" and not arg:
        return Random(catalog.n_tracks)
    if name == "sticky_artist" and not arg:
        return StickyArtist(catalog)
    if name == "sticky_artist_exclusive" and not arg:
        return StickyArtist(catalog, exclude_previous=True)
    if name == "toppop":
        return TopPop(catalog, top=_logged_top(arg, world))
    if name == "toppop_catalog":
        return TopPop(catalog, _positive_int(arg, spec, name) if arg else 100)
    if name in ("contextual", "botify_i2i") and arg:
        from sim_bridge.botify_rules import BotifyI2I, Contextual
        from sim_bridge.recfile import read_item_recs

        cls = Contextual if name == "contextual" else BotifyI2I
        return cls(read_item_recs(Path(arg)), catalog.n_tracks)
    if name == "oracle" and not arg:
        return Oracle(world)
    if name == "contextual_catalog":
        from sim_bridge.botify_rules import Contextual

        return Contextual(catalog_item_lists(world, int(arg) if arg else 20), catalog.n_tracks)
    if name == "i2i" and arg:
        from sim_bridge.recfile import read_item_recs
        from sim_bridge.session_aware import ItemToItem

        path, serving = _i2i_arg(arg)
        return ItemToItem(read_item_recs(Path(path)), catalog, **serving)
    if name in ("indexed", "sequential") and arg:
        from sim_bridge.recfile import read_user_recs

        recs = read_user_recs(Path(arg))
        cls = Indexed if name == "indexed" else Sequential
        return cls(recs, catalog.n_tracks)
    raise ValueError(
        f"unknown policy '{spec}': expected one of {', '.join(BASELINES)}, oracle, contextual_catalog[:K], "
        "indexed:RECS.json, sequential:RECS.json, contextual:ITEM_RECS.json, botify_i2i:ITEM_RECS.json, "
        "i2i:ITEM_RECS.json[:LIKE:SKIP]"
    )


def _positive_int(text: str, spec: str, name: str) -> int:
    """``N`` of ``NAME:N``: a positive integer, else a ValueError naming the spec."""
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"policy '{spec}': expected {name} or {name}:N with N a positive integer, got {text!r}")
    return int(text)


def _logged_top(arg: str, world) -> np.ndarray:
    """``toppop``'s tracks: the file given, else the world's ``top_tracks.json``."""
    if arg:
        from sim_bridge.top_tracks import read_top_tracks

        top = read_top_tracks(Path(arg))
    elif getattr(world, "top_tracks", None) is not None:
        top = world.top_tracks
    else:
        raise ValueError("policy 'toppop' serves logged top tracks, but this world folder has no top_tracks.json: "
                         "use toppop:TOP_TRACKS.json or toppop_catalog (the catalog's pop)")
    if top.max() >= world.catalog.n_tracks:
        raise ValueError(f"policy 'toppop': top tracks name tracks outside the catalog 0..{world.catalog.n_tracks - 1}")
    return top


def _i2i_arg(arg: str) -> tuple[str, dict]:
    """``FILE`` or ``FILE:LIKE:SKIP`` → (file, ItemToItem keyword arguments)."""
    if arg.count(":") < 2:
        return arg, {}
    path, like, skip = arg.rsplit(":", 2)
    try:
        serving = {"like_threshold": float(like), "skip_artists": int(skip)}
    except ValueError:
        raise ValueError(f"policy 'i2i:{arg}': expected i2i:FILE:LIKE:SKIP with LIKE a number and SKIP "
                         f"an integer, got LIKE={like!r} SKIP={skip!r}") from None
    if serving["skip_artists"] < 0:
        raise ValueError(f"policy 'i2i:{arg}': SKIP must be >= 0, got {serving['skip_artists']}")
    return path, serving
