"""The public catalog of a generated world in the course's schema (World v3, docs/worlds.md).

A v3 world keeps v2's hidden truth (artists, taste clusters, popularity counts, embeddings,
users) and labels it the way the course's ``tracks.json`` does::

    {"artist": "Кино", "album": "…", "title": "…", "genre": [1, 47], "pop": 2.37, "duration": 231, "track": 1}

* ``pop``: a rank-preserving map of the hidden play counts onto the course's standardised
  popularity (:func:`course_pop`), so anything ranking tracks by catalog pop ranks them as v2 did;
* ``genre``: lists of integer ids with the course's shares (:func:`genre_lists`). Id 1 alone is
  an uninformative catch-all (v2's "missing"); every taste cluster owns a contiguous block of
  the other ids, an artist's ids come from its cluster's block (a ``genre_noise`` share of
  artists from another artist's cluster, as v2 relabels), and the tracks of an artist share its
  list, but for whole albums (or whole artists) labelled with the catch-all;
* ``duration``: integer seconds, log-normal around the course's median, clipped;
* ``artist``, ``album``, ``title``: names made of syllables, mostly Cyrillic, unique per artist.

Everything here draws from the world's own ``catalog`` stream (one child per part), never from
the streams of the hidden truth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog

CATCHALL = 1  # the genre id of the uninformative catch-all label
_PARTS = ("albums", "genre", "duration", "names")  # one child stream each, in this order
_CALIBRATION_ROUNDS = 12


@dataclass(frozen=True)
class CatalogParams:
    """The public catalog's parameters (World v3); defaults are the course's, measured on a
    1,425-track sample of its 50,000 (``configs/world_v3.yaml`` documents each one)."""

    # pop: piecewise-linear in normal scores Φ⁻¹((rank − 0.5)/N) through (quantile, value) knots,
    # with pop_min / pop_max at the lowest and highest rank
    # (p25 and p75 are not measured: fitted so that the mean is -0.45 and the sd 0.70 at 50,000 tracks)
    pop_quantiles: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
    pop_knots: tuple[float, ...] = (-1.06, -0.965, -0.63, -0.253, 0.32, 2.37)
    pop_min: float = -1.40
    pop_max: float = 4.32
    # genre: shares of tracks
    genre_catchall_share: float = 0.449  # genre [1] alone
    genre_catchall_artist_part: float = 0.5  # the part of those that are whole artists (the rest whole albums)
    genre_two_share: float = 0.116  # exactly two ids
    genre_three_share: float = 0.013  # three ids
    genre_with_catchall_share: float = 0.064  # id 1 beside other ids
    genre_top_ids: tuple[int, ...] = (10, 6, 149, 2, 47, 36, 53)  # the most common ids besides 1
    genre_top_shares: tuple[float, ...] = (0.135, 0.081, 0.065, 0.056, 0.040, 0.033, 0.028)  # tracks carrying each
    n_genre_ids: int = 90  # ids besides 1 (the top ones included)
    genre_max_id: int = 154  # ids are 2..genre_max_id; this one is always among them
    genre_tail_zipf: float = 0.7  # the other ids' shares ∝ 1 / rank^this (in a random order of ids)
    # albums: a new album starts at an artist's first track and, with probability 1/this, at any other
    album_tracks_mean: float = 6.0
    # duration (seconds): median · exp(sigma · N(0, 1)), rounded, clipped to [min, max]
    duration_median: float = 205.0
    duration_sigma: float = 0.35
    duration_min: int = 48
    duration_max: int = 836
    latin_name_share: float = 0.1  # artists named in Latin letters (their albums and titles too)

    def check_catalog_params(self) -> None:
        """Raise ValueError on inconsistent catalog parameters."""
        q, k = self.pop_quantiles, self.pop_knots
        if len(q) != len(k):
            raise ValueError(f"pop_quantiles and pop_knots must have the same length, got {len(q)} and {len(k)}")
        if any(not 0 < x < 1 for x in q) or any(b <= a for a, b in zip(q, q[1:])):
            raise ValueError(f"pop_quantiles must increase strictly inside (0, 1), got {list(q)}")
        values = (self.pop_min, *k, self.pop_max)
        if any(b < a for a, b in zip(values, values[1:])):
            raise ValueError(f"pop_min <= pop_knots <= pop_max must not decrease, got {list(values)}")
        shares = ("genre_catchall_share", "genre_catchall_artist_part", "genre_two_share", "genre_three_share",
                  "genre_with_catchall_share", "latin_name_share")
        for name in shares:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        multi = self.genre_two_share + self.genre_three_share
        if self.genre_catchall_share + multi > 1:
            raise ValueError("genre_catchall_share + genre_two_share + genre_three_share must be <= 1")
        if self.genre_with_catchall_share > multi:
            raise ValueError("genre_with_catchall_share must be <= genre_two_share + genre_three_share")
        top = self.genre_top_ids
        if len(top) != len(self.genre_top_shares) or len(set(top)) != len(top):
            raise ValueError("genre_top_ids must be distinct, one per genre_top_shares entry")
        if any(not 2 <= g <= self.genre_max_id for g in top):
            raise ValueError(f"genre_top_ids must lie in 2..genre_max_id ({self.genre_max_id}), got {list(top)}")
        if not len(top) + (self.genre_max_id not in top) <= self.n_genre_ids <= self.genre_max_id - 1:
            raise ValueError(f"n_genre_ids ({self.n_genre_ids}) must hold genre_top_ids and genre_max_id, "
                             f"and fit in 2..genre_max_id")
        if any(s < 0 for s in self.genre_top_shares) or sum(self.genre_top_shares) >= _non_catchall_slots(self):
            raise ValueError("genre_top_shares must be >= 0 and leave room for the other ids")
        if self.album_tracks_mean < 1:
            raise ValueError(f"album_tracks_mean must be >= 1, got {self.album_tracks_mean}")
        if not 0 < self.duration_min <= self.duration_median <= self.duration_max or self.duration_sigma < 0:
            raise ValueError("need 0 < duration_min <= duration_median <= duration_max and duration_sigma >= 0")


def course_catalog(params: CatalogParams, genre_noise: float, rng: np.random.Generator, track_artist: np.ndarray,
                   artist_cluster: np.ndarray, counts: np.ndarray) -> Catalog:
    """The public catalog of a world whose hidden truth has sorted ``track_artist`` codes, each
    artist's taste cluster and integer popularity ``counts``; ``rng`` is the catalog's own stream."""
    streams = dict(zip(_PARTS, rng.spawn(len(_PARTS))))
    track_album = albums_of(streams["albums"], track_artist, params.album_tracks_mean)
    genre = genre_lists(params, genre_noise, streams["genre"], track_artist, track_album, artist_cluster)
    duration = durations(params, streams["duration"], len(track_artist))
    artist, album, title = names_of(streams["names"], track_artist, track_album, params.latin_name_share)
    return Catalog(pd.DataFrame({
        C.TRACK: np.arange(len(track_artist)),
        C.ARTIST: artist,
        C.ALBUM: album,
        C.TITLE: title,
        C.GENRE: genre,
        C.POP: course_pop(counts, params),
        C.DURATION: duration,
    }))


# --------------------------------------------------------------------------- pop


def course_pop(counts: np.ndarray, params: CatalogParams) -> np.ndarray:
    """float64: ``counts`` mapped monotonically onto the course's standardised popularity.

    Each track's normal score Φ⁻¹((r − 0.5)/N), r its rank (ties share the lowest), is mapped
    piecewise-linearly through the knots (Φ⁻¹(q), value) and the extremes (lowest score, pop_min),
    (highest score, pop_max): strictly increasing in rank, so the order of the counts (and their
    ties) is kept exactly."""
    n = len(counts)
    ranks = pd.Series(counts).rank(method="min").to_numpy()
    score = ndtri((ranks - 0.5) / n)
    lo, hi = ndtri(0.5 / n), ndtri(1 - 0.5 / n)
    inner = [(s, v) for s, v in zip(ndtri(np.asarray(params.pop_quantiles)), params.pop_knots) if lo < s < hi]
    xs = [lo, *(s for s, _ in inner), hi] if n > 1 else [lo - 1, hi + 1]
    ys = [params.pop_min, *(v for _, v in inner), params.pop_max]
    return np.interp(score, xs, ys)


# --------------------------------------------------------------------------- albums, duration


def albums_of(rng: np.random.Generator, track_artist: np.ndarray, tracks_mean: float) -> np.ndarray:
    """Album of each track, 0..n_albums-1 (albums never span artists; tracks sorted by artist)."""
    first = np.r_[True, track_artist[1:] != track_artist[:-1]]
    start = first | (rng.random(len(track_artist)) < 1.0 / tracks_mean)
    return np.cumsum(start) - 1


def durations(params: CatalogParams, rng: np.random.Generator, n: int) -> np.ndarray:
    """int64 seconds: log-normal around ``duration_median``, clipped to the plausible range."""
    seconds = np.rint(params.duration_median * np.exp(params.duration_sigma * rng.normal(size=n)))
    return np.clip(seconds, params.duration_min, params.duration_max).astype(np.int64)


# --------------------------------------------------------------------------- genre


def _non_catchall_slots(p: CatalogParams) -> float:
    """Ids other than 1 per track, on average, at the target shares."""
    single = 1 - p.genre_catchall_share - p.genre_two_share - p.genre_three_share
    return single + 2 * p.genre_two_share + 3 * p.genre_three_share - p.genre_with_catchall_share


def _quota(rng: np.random.Generator, weights: np.ndarray, shares) -> np.ndarray:
    """Class of each unit (an artist, an album): units taken in random order, class k for those
    whose middle falls in the k-th ``shares`` slice of the total weight (class len(shares) after
    the last). So the classes' weights match the shares up to one unit each, by construction."""
    order = rng.permutation(len(weights))
    w = weights[order].astype(np.float64)
    middle = np.cumsum(w) - w / 2
    classes = np.empty(len(weights), dtype=np.int64)
    classes[order] = np.searchsorted(np.cumsum(shares) * w.sum(), middle, side="right")
    return classes


def genre_lists(p: CatalogParams, genre_noise: float, rng: np.random.Generator, track_artist: np.ndarray,
                track_album: np.ndarray, artist_cluster: np.ndarray) -> list[tuple[int, ...]]:
    """Each track's genre ids (sorted), at the course's shares (see the module's docstring).

    Shares of tracks are met by quotas over artists and albums taken in random order: the
    catch-all [1] on whole artists, then whole albums; then, over the other tracks, the list's
    length and whether id 1 joins it. Ids come from the artist's label cluster's block: clusters
    in order own contiguous slices of the ids' slot shares (largest ids first), so the largest
    cluster's label is the most common id. The top ids' slot shares are then adjusted a few
    rounds, with the same random numbers, until their track shares come out at the targets."""
    n, n_artists = len(track_artist), len(artist_cluster)
    sizes = np.bincount(track_artist, minlength=n_artists)
    # the catch-all: whole artists, then whole albums of the others, to genre_catchall_share of tracks
    artist_catch = _quota(rng, sizes, [p.genre_catchall_share * p.genre_catchall_artist_part]) == 0
    album_artist = track_artist[np.r_[0, np.flatnonzero(np.diff(track_album)) + 1]]
    album_sizes = np.bincount(track_album)
    left = p.genre_catchall_share * n - sizes[artist_catch].sum()
    eligible = ~artist_catch[album_artist]
    album_catch = artist_catch[album_artist].copy()
    if left > 0 and eligible.any():
        share = min(1.0, left / album_sizes[eligible].sum())
        album_catch[eligible] = _quota(rng, album_sizes[eligible], [share]) == 0
    track_catch = album_catch[track_album]
    # list length and id 1 per artist, in shares of the tracks outside the catch-all
    weight = np.bincount(track_artist, weights=~track_catch, minlength=n_artists)
    multi = p.genre_two_share + p.genre_three_share
    with1 = p.genre_with_catchall_share / multi if multi else 0.0
    labelled = max(weight.sum(), 1.0) / n
    shares = np.array([p.genre_two_share * with1, p.genre_two_share * (1 - with1),
                       p.genre_three_share * with1, p.genre_three_share * (1 - with1)]) / labelled
    kind = _quota(rng, weight, shares)  # 0..3 as in shares, 4: one id
    n_ids = np.array([1, 2, 2, 3, 1])[kind]  # ids other than 1
    has1 = np.isin(kind, (0, 2))
    # the cluster whose block an artist's ids come from
    label_cluster = artist_cluster.copy()
    noisy = rng.random(n_artists) < genre_noise
    label_cluster[noisy] = artist_cluster[rng.integers(n_artists, size=int(noisy.sum()))]
    n_clusters = int(artist_cluster.max()) + 1
    slots = np.bincount(label_cluster, weights=weight * n_ids, minlength=n_clusters)
    # ids in block order (the top ids by share, then the rest) and their slot shares
    top = np.array(p.genre_top_ids, dtype=np.int64)
    order = np.argsort(-np.array(p.genre_top_shares), kind="stable")
    top, target = top[order], np.array(p.genre_top_shares)[order]
    others = np.setdiff1d(np.arange(2, p.genre_max_id), top)
    n_tail = p.n_genre_ids - len(top)
    tail = others[np.sort(rng.choice(len(others), size=n_tail - (p.genre_max_id not in top), replace=False))]
    if p.genre_max_id not in top:
        tail = np.r_[tail, p.genre_max_id]
    tail = rng.permutation(tail)
    ids = np.r_[top, tail]
    tail_shape = 1.0 / np.arange(1, n_tail + 1) ** p.genre_tail_zipf
    uniforms = rng.random((n_artists, 3))
    mass = target / _non_catchall_slots(p)
    best, best_miss = None, np.inf
    for _ in range(_CALIBRATION_ROUNDS):  # one big artist can flip an id in or out: keep the closest round
        pi = np.r_[mass, (1.0 - mass.sum()) * tail_shape / tail_shape.sum()] if n_tail else mass / mass.sum()
        chosen = _draw_ids(_blocks(pi, slots), pi, label_cluster, n_ids, uniforms)
        got = np.zeros(len(top))
        for j in range(3):
            hit = (chosen[:, j] >= 0) & (chosen[:, j] < len(top))
            got += np.bincount(chosen[hit, j], weights=weight[hit], minlength=len(top)) / n
        miss = np.abs(got - target).max(initial=0.0)
        if miss < best_miss:
            best, best_miss = chosen, miss
        if not n_tail or miss < 2e-4:
            break
        mass = mass * np.sqrt(np.where(got > 0, target / np.maximum(got, 1e-12), 1.0))
        mass *= min(1.0, 0.98 / mass.sum())  # the other ids keep some room
    chosen = best
    lists = []
    for a in range(n_artists):
        genre = [int(ids[g]) for g in chosen[a, : n_ids[a]]] + ([CATCHALL] if has1[a] else [])
        lists.append(tuple(sorted(genre)))
    alone = (CATCHALL,)
    return [alone if c else lists[a] for a, c in zip(track_artist.tolist(), track_catch.tolist())]


def _blocks(pi: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """[clusters, ids]: each cluster's id distribution, its contiguous slice of the cumulative
    ``pi`` (clusters in order, sized by their share of ``slots``)."""
    edges_id = np.r_[0.0, np.cumsum(pi) / pi.sum()]
    edges_c = np.r_[0.0, np.cumsum(slots) / max(slots.sum(), 1e-12)]
    overlap = (np.minimum(edges_id[None, 1:], edges_c[1:, None]) - np.maximum(edges_id[None, :-1], edges_c[:-1, None]))
    overlap = np.maximum(overlap, 0.0)
    total = overlap.sum(axis=1, keepdims=True)
    return np.where(total > 0, overlap / np.where(total > 0, total, 1.0), pi / pi.sum())


def _draw_ids(blocks, pi, label_cluster, n_ids, uniforms) -> np.ndarray:
    """[artists, 3] positions in the id order: up to ``n_ids`` distinct ids per artist, each by
    inverse CDF of its block less the ids already drawn (the whole ``pi`` once the block is spent)."""
    n_artists = len(label_cluster)
    chosen = np.full((n_artists, 3), -1, dtype=np.int64)
    taken = np.zeros((n_artists, blocks.shape[1]), dtype=bool)
    for j in range(3):
        rows = np.flatnonzero(n_ids > j)
        w = np.where(taken[rows], 0.0, blocks[label_cluster[rows]])
        spent = w.sum(axis=1) <= 1e-12
        w[spent] = np.where(taken[rows[spent]], 0.0, pi[None, :])
        cdf = np.cumsum(w, axis=1)
        pick = (cdf < uniforms[rows, j, None] * cdf[:, -1:]).sum(axis=1)
        pick = np.minimum(pick, blocks.shape[1] - 1)
        chosen[rows, j] = pick
        taken[rows, pick] = True
    return chosen


# --------------------------------------------------------------------------- names

_CYRILLIC = (
    ["б", "в", "г", "д", "ж", "з", "к", "л", "м", "н", "п", "р", "с", "т", "ф", "х", "ц", "ч", "ш",
     "бр", "гр", "др", "кр", "пр", "тр", "ст", "св", "сл", "зв", "пл", "мр"],
    ["а", "а", "о", "о", "е", "и", "и", "у", "ы", "я", "ю", "ё"],
    ["", "", "", "", "н", "р", "л", "й", "с", "к", "м", "т"],
)
_LATIN = (
    ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "cr", "st", "tr", "sh", "ch"],
    ["a", "a", "e", "e", "i", "o", "o", "u", "y", "ou", "ea"],
    ["", "", "", "", "n", "r", "l", "s", "x", "ck", "nd", "m"],
)
_VOCABULARY = 3000  # words per alphabet


def _words(rng: np.random.Generator, alphabet, n: int) -> list[str]:
    """``n`` distinct made-up words of 1–3 syllables (onset + vowel + coda)."""
    onsets, vowels, codas = alphabet
    words: dict[str, None] = {}
    while len(words) < n:
        k = rng.integers(1, 4, size=n)
        parts = [rng.integers(len(x), size=(n, 3)) for x in (onsets, vowels, codas)]
        for i in range(n):
            word = "".join(onsets[parts[0][i, s]] + vowels[parts[1][i, s]] + codas[parts[2][i, s]] for s in range(k[i]))
            words.setdefault(word)
    return list(words)[:n]


def _phrases(rng: np.random.Generator, vocab: list[list[str]], script: np.ndarray, lo: int, hi: int) -> list[str]:
    """One capitalised phrase of lo..hi words per entry of ``script`` (0 Cyrillic, 1 Latin)."""
    n = len(script)
    length = rng.integers(lo, hi + 1, size=n).tolist()
    picks = rng.integers(_VOCABULARY, size=(n, hi)).tolist()
    out = []
    for s, k, row in zip(script.tolist(), length, picks):
        words = vocab[s]
        out.append(" ".join(words[w] for w in row[:k]).capitalize())
    return out


def names_of(rng: np.random.Generator, track_artist: np.ndarray, track_album: np.ndarray, latin_share: float):
    """Artist name (unique per artist), album title and track title of each track."""
    vocab = [_words(rng, _CYRILLIC, _VOCABULARY), _words(rng, _LATIN, _VOCABULARY)]
    n_artists = int(track_artist.max()) + 1
    n_albums = int(track_album.max()) + 1
    artist_script = (rng.random(n_artists) < latin_share).astype(np.int64)
    artist = [name.title() for name in _phrases(rng, vocab, artist_script, 1, 2)]
    seen: set[str] = set()
    for a in range(n_artists):  # a clash gets one more word until unique
        while artist[a] in seen:
            artist[a] += " " + vocab[artist_script[a]][int(rng.integers(_VOCABULARY))].capitalize()
        seen.add(artist[a])
    album_artist = track_artist[np.r_[0, np.flatnonzero(np.diff(track_album)) + 1]]
    album = _phrases(rng, vocab, artist_script[album_artist], 1, 3)
    title = _phrases(rng, vocab, artist_script[track_artist], 1, 4)
    return [artist[a] for a in track_artist.tolist()], [album[b] for b in track_album.tolist()], title
