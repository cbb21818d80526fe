"""Botify logs + public catalog → training data for the DSSM (vectorised, numpy only).

Definitions (the seminar, docs/seed.md):

* positive: an event with ``time > positive_threshold`` (every event counts, the first track of
  a session included);
* kept tracks: tracks with at least ``min_positives`` positives — these are the items the item
  tower scores and the only candidates for recommendation;
* history: a user's most recent ``history_len`` *unique* positive tracks (any catalog track),
  stored as catalog id + 1, padded with 0 — the user tower's EmbeddingBag input;
* triplets: every positive of a kept track × ``n_negatives`` negatives drawn uniformly from the
  other kept tracks, split train/val/test (``split``, below);
* session pairs (``pair_window`` > 0) and artist co-occurrence vectors (``cooc_dim`` > 0), not
  in the seminar: what one session's positives say about which tracks belong together
  (:mod:`model.cooccurrence`).

"A triplet's history excludes its own positive and negative" is applied at batch time by masking
(``mask_history``): a triplet stores the *row* of its user's history rather than a copy, which
would cost n_triplets × history_len ints (≈ 360 MB at 3M triplets).

Splits (``split``):

* ``random`` (the seminar's, as the seed ran it): the triplets are cut 80/10/10 by one seeded
  permutation *after* each positive was repeated ``n_negatives`` times, and histories and
  co-occurrence read every event. Nearly every validation (user, positive) pair is then also
  trained on, with the positive in the user's history: the validation loss measures fit.
* ``time``: each user's latest positives are held out — the last ``test_fraction`` of a user's
  positives (in time) are test, the ``val_fraction`` before them validation — and histories,
  session pairs and co-occurrence are built from the events before the user's first held-out
  positive. The validation loss then measures what serving asks: the next tracks a user likes,
  from what they did before. The served recommendations still read every positive
  (``serving_history``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog
from sim_bridge.contract.files import ConfigError

from model.cooccurrence import artist_vectors, session_pairs

POP_TRANSFORMS = ("raw", "log", "standard")
SPLITS = ("random", "time")


@dataclass
class FeatureConfig:
    """How logs become triplets. Defaults are the seminar's."""

    positive_threshold: float = 0.8  # event is a positive when time > this
    min_positives: int = 5  # keep tracks with at least this many positives
    history_len: int = 30  # unique positives per user history
    n_negatives: int = 10  # uniform random negatives per positive
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    pop_transform: str = "raw"  # the catalog's pop as given (the seminar) | log (log1p) | standard (z-scored log1p);
    # log and standard are for play counts and refuse a negative pop (the course's is standardised)
    pair_window: int = 0  # session pairs: up to this many later positives per positive (0: none, the seminar)
    cooc_dim: int = 0  # artist co-occurrence vectors as an item input, this wide (0: none, the seminar)
    split: str = "random"  # random (the seminar's triplet permutation) | time (each user's latest positives held out)
    seed: int = 0  # negatives and split

    def __post_init__(self) -> None:
        for key in ("min_positives", "history_len", "n_negatives"):
            if getattr(self, key) < 1:
                raise ConfigError(f"features.{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("pair_window", "cooc_dim"):
            if getattr(self, key) < 0:
                raise ConfigError(f"features.{key}: must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.positive_threshold < 1.0:
            raise ConfigError(f"features.positive_threshold: must be in [0, 1), got {self.positive_threshold}")
        for key in ("val_fraction", "test_fraction"):
            if not 0.0 < getattr(self, key) < 0.5:
                raise ConfigError(f"features.{key}: must be in (0, 0.5), got {getattr(self, key)}")
        if self.split not in SPLITS:
            raise ConfigError(f"features.split: expected one of {SPLITS}, got {self.split!r}")
        if self.pop_transform not in POP_TRANSFORMS:
            raise ConfigError(f"features.pop_transform: expected one of {POP_TRANSFORMS}, got {self.pop_transform!r}")


@dataclass
class TrainingData:
    """Numpy arrays only (picklable, one copy in Ray's object store).

    Item index i (0..K-1) is catalog track ``track_ids[i]``; user row u is ``user_ids[u]``.
    Triplet arrays are int32 [n, 3] = (user row, positive item, negative item); the user row is
    also the triplet's history row. Session pairs are int32 [P, 2] = (earlier item, later item)
    with the later one's listened time in ``pair_time`` (empty when ``pair_window`` is 0).
    """

    n_tracks: int  # catalog size; the bag has n_tracks + 1 rows (0 = padding)
    track_ids: np.ndarray  # int64 [K] kept catalog ids, sorted
    user_ids: np.ndarray  # int64 [U] users with at least one positive, sorted
    genre_ids: np.ndarray  # int64 [G] the genre ids seen in the catalog, sorted: one column each
    item_genres: np.ndarray  # float32 [K, G] genre multi-hot
    item_pop: np.ndarray  # float32 [K] popularity after pop_transform
    item_artist: np.ndarray  # int64 [K] artist of each item as a code 0..A-1 (public catalog)
    history: np.ndarray  # int32 [U, L] catalog id + 1, 0 = padding: what train/val/test triplets read
    serving_history: np.ndarray  # int32 [U, L] the same from every positive: what recommendations read
    train: np.ndarray  # int32 [n_train, 3]
    val: np.ndarray  # int32 [n_val, 3]
    test: np.ndarray  # int32 [n_test, 3]
    pairs: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2), np.int32))  # int32 [P, 2]
    pair_time: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))  # float32 [P]
    item_cooc: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0), np.float32))  # float32 [K, C]

    @property
    def n_items(self) -> int:
        return len(self.track_ids)

    @property
    def n_genres(self) -> int:
        return len(self.genre_ids)

    @property
    def n_artists(self) -> int:
        return int(self.item_artist.max()) + 1 if len(self.item_artist) else 0


def build_training_data(events: pd.DataFrame, catalog: Catalog, cfg: FeatureConfig) -> TrainingData:
    """Build histories, item features and split triplets from botify events and the catalog."""
    pos = _positives(events, catalog.n_tracks, cfg.positive_threshold)
    counts = np.bincount(pos[C.TRACK].to_numpy(), minlength=catalog.n_tracks)
    track_ids = np.flatnonzero(counts >= cfg.min_positives).astype(np.int64)
    if len(track_ids) < 2:
        raise ValueError(f"only {len(track_ids)} tracks have >= {cfg.min_positives} positives; need 2")
    user_ids, serving_history = _histories(pos, cfg.history_len)
    genre_ids, item_genres = _genre_multi_hot(catalog, track_ids)
    triplets, kept = _triplets(pos, track_ids, user_ids, cfg)
    if cfg.split == "time":
        part = _latest_held_out(pos, cfg)  # 0 train, 1 val, 2 test per positive
        train, val, test = (triplets[np.repeat(part[kept], cfg.n_negatives) == k] for k in range(3))
        events = _before_held_out(events, pos, part)
        history = _histories(pos[part == 0], cfg.history_len, user_ids)[1]
    else:
        train, val, test = _split(triplets, cfg)
        history = serving_history
    item_artist = pd.factorize(catalog.tracks[C.ARTIST].to_numpy()[track_ids], sort=True)[0].astype(np.int64)
    pairs, pair_time = session_pairs(events, track_ids, item_artist, cfg.positive_threshold, cfg.pair_window)
    item_cooc = artist_vectors(events, catalog.artist_codes, cfg.positive_threshold, cfg.cooc_dim)[track_ids]
    return TrainingData(
        n_tracks=catalog.n_tracks, track_ids=track_ids, user_ids=user_ids, genre_ids=genre_ids,
        item_genres=item_genres, item_pop=_pop(catalog.pop, track_ids, cfg.pop_transform),
        item_artist=item_artist, history=history, serving_history=serving_history, train=train, val=val,
        test=test, pairs=pairs, pair_time=pair_time, item_cooc=item_cooc,
    )


def mask_history(history: np.ndarray | "torch.Tensor", pos_track1, neg_track1):  # noqa: F821
    """Zero (pad) history entries equal to the triplet's positive or negative (catalog id + 1).

    Works on numpy arrays and torch tensors: history [B, L], pos/neg [B].
    """
    hit = (history == pos_track1[:, None]) | (history == neg_track1[:, None])
    return history * ~hit


def _positives(events: pd.DataFrame, n_tracks: int, threshold: float) -> pd.DataFrame:
    missing = [c for c in (C.USER, C.TRACK, C.TIME, C.TIMESTAMP) if c not in events.columns]
    if missing:
        raise ValueError(f"events lack column(s) {missing}")
    time = events[C.TIME].to_numpy(dtype=np.float64)
    pos = events.loc[time > threshold, [C.USER, C.TRACK, C.TIMESTAMP]]
    pos = pos.astype({C.USER: np.int64, C.TRACK: np.int64, C.TIMESTAMP: np.int64})
    bad = (pos[C.TRACK] < 0) | (pos[C.TRACK] >= n_tracks)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} events name tracks outside the catalog (0..{n_tracks - 1})")
    # stable order: by user, then time — fixes the history order and the triplet order
    return pos.sort_values([C.USER, C.TIMESTAMP, C.TRACK], kind="stable").reset_index(drop=True)


def _histories(pos: pd.DataFrame, history_len: int,
               user_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each user's latest ``history_len`` unique positives → (user ids, int32 [U, L] track + 1,
    0 pad); rows follow ``user_ids`` when given (a user without positives here: all padding)."""
    last = pos.drop_duplicates([C.USER, C.TRACK], keep="last")  # latest play of each track
    last = last.iloc[::-1]  # newest first within each user (pos is sorted by user, time)
    users = last[C.USER].to_numpy()
    rank = last.groupby(C.USER, sort=False).cumcount().to_numpy()
    keep = rank < history_len
    if user_ids is None:
        user_ids = np.unique(users[keep]).astype(np.int64)
    user_row = np.searchsorted(user_ids, users[keep])
    history = np.zeros((len(user_ids), history_len), dtype=np.int32)
    history[user_row, rank[keep]] = last[C.TRACK].to_numpy()[keep] + 1
    return user_ids, history


def _latest_held_out(pos: pd.DataFrame, cfg: FeatureConfig) -> np.ndarray:
    """int8 [P] per positive (sorted by user, time): 2 for each user's latest
    ``floor(n · test_fraction)`` positives, 1 for the ``floor(n · val_fraction)`` before them,
    0 (train) for the rest — so every user keeps at least 80% of their positives to train on."""
    size = pos.groupby(C.USER, sort=False)[C.TRACK].transform("size").to_numpy()
    from_end = size - 1 - pos.groupby(C.USER, sort=False).cumcount().to_numpy()
    n_test = np.floor(size * cfg.test_fraction)
    n_val = np.floor(size * cfg.val_fraction)
    part = np.zeros(len(pos), dtype=np.int8)
    part[from_end < n_test + n_val] = 1
    part[from_end < n_test] = 2
    return part


def _before_held_out(events: pd.DataFrame, pos: pd.DataFrame, part: np.ndarray) -> pd.DataFrame:
    """The events of each user before their first held-out positive (all of a user's events when
    none is held out): what session pairs and co-occurrence may learn from."""
    cut = pos.loc[part > 0].groupby(C.USER)[C.TIMESTAMP].min()
    limit = events[C.USER].map(cut).to_numpy(dtype=np.float64, na_value=np.inf)
    return events[events[C.TIMESTAMP].to_numpy(dtype=np.float64) < limit]


def _genre_multi_hot(catalog: Catalog, track_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Genre ids of each kept track as multi-hot float32 [K, G], one column per id seen anywhere
    in the catalog (sorted), so the order of a track's list does not matter; no ids → zeros."""
    genres = catalog.genres
    lengths = np.array([len(g) for g in genres], dtype=np.int64)
    flat = np.fromiter((i for g in genres for i in g), dtype=np.int64, count=int(lengths.sum()))
    ids = np.unique(flat)
    kept = [genres[t] for t in track_ids]
    rows = np.repeat(np.arange(len(track_ids)), [len(g) for g in kept])
    cols = np.searchsorted(ids, np.fromiter((i for g in kept for i in g), dtype=np.int64, count=len(rows)))
    out = np.zeros((len(track_ids), len(ids)), dtype=np.float32)
    out[rows, cols] = 1.0
    return ids, out


def check_pop_transform(pop: np.ndarray, transform: str) -> None:
    """Refuse a count transform (``log``, ``standard``) of a catalog whose pop goes negative."""
    if transform != "raw" and len(pop) and pop.min() < 0:
        raise ConfigError(f"features.pop_transform: {transform!r} is for play counts, but the catalog's pop "
                          f"has negative values (min {pop.min():.3g}: a standardised popularity, as the "
                          f"course's is); use pop_transform: raw to feed it as given")


def _pop(catalog_pop: np.ndarray, track_ids: np.ndarray, transform: str) -> np.ndarray:
    """The kept items' popularity input: as given, or (play counts only) log1p / log1p z-scored
    over the kept items."""
    check_pop_transform(catalog_pop, transform)
    pop = catalog_pop[track_ids]
    if transform == "raw":
        return pop.astype(np.float32)
    logp = np.log1p(pop)
    if transform == "log":
        return logp.astype(np.float32)
    return ((logp - logp.mean()) / (logp.std() + 1e-8)).astype(np.float32)


def _triplets(pos: pd.DataFrame, track_ids: np.ndarray, user_ids: np.ndarray,
              cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """(int32 [P' * n_neg, 3]: (user row, positive item, negative item), negatives ≠ positive, in
    the order of ``pos``; bool [P]: which positives are of kept tracks — the P' that made them)."""
    tracks = pos[C.TRACK].to_numpy()
    item = np.searchsorted(track_ids, tracks)
    kept = (item < len(track_ids)) & (track_ids[np.minimum(item, len(track_ids) - 1)] == tracks)
    item = item[kept]
    user_row = np.searchsorted(user_ids, pos[C.USER].to_numpy()[kept])
    rng = np.random.default_rng([cfg.seed, 1])
    k, n = len(track_ids), cfg.n_negatives
    # uniform over the other K-1 items: shift the positive by 1..K-1 (mod K)
    neg = (item[:, None] + rng.integers(1, k, size=(len(item), n))) % k
    out = np.empty((len(item) * n, 3), dtype=np.int32)
    out[:, 0] = np.repeat(user_row, n)
    out[:, 1] = np.repeat(item, n)
    out[:, 2] = neg.ravel()
    return out, kept


def _split(triplets: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.random.default_rng([cfg.seed, 2]).permutation(len(triplets))
    n_val = int(round(len(triplets) * cfg.val_fraction))
    n_test = int(round(len(triplets) * cfg.test_fraction))
    n_train = len(triplets) - n_val - n_test
    train, val, test = np.split(perm, [n_train, n_train + n_val])
    return triplets[np.sort(train)], triplets[np.sort(val)], triplets[np.sort(test)]
