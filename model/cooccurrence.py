"""What one session's positives say about which tracks belong together (not in the seminar).

A listener stays with one taste for a whole session, so the tracks a session liked sit near each
other in the world's item space — the space the per-track lists of ``i2i`` are drawn from. The
user→item triplets teach that only through user histories; two features read it off the
sessions directly:

* **session pairs** (``features.pair_window``): (earlier, later) positives of one session, the
  later within ``pair_window`` positives of the earlier and by another artist, weighted by the
  later one's listened time — a second loss on the item tower (``model.dssm.DSSM.pair_loss``).
  Same-artist pairs are left out: the artist is a public feature, and ``i2i`` skips the recent
  artists anyway;
* **artist co-occurrence vectors** (``features.cooc_dim``): artists whose tracks were liked in one
  session, counted over all sessions, as positive pointwise mutual information (PPMI: how much
  more often two artists meet than their popularity predicts), factorised by a truncated SVD
  into ``cooc_dim`` columns per artist, unit length — an input of the item tower, fixed.

Both read only the logs and the public catalog. Vectorised numpy / scipy.sparse.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from sim_bridge.contract import columns as C
from sim_bridge.contract.events import session_order


def session_positives(events: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Each session's positives in play order, a track's first positive in a session only:
    columns ``session``, ``track``, ``time``."""
    if C.MESSAGE not in events.columns:
        raise ValueError(f"events lack column(s) {[C.MESSAGE]} (session features need the sessions)")
    order, session = session_order(events)
    time = events[C.TIME].to_numpy(dtype=np.float64)[order]
    liked = time > threshold
    plays = pd.DataFrame({"session": session[liked], "track": events[C.TRACK].to_numpy(dtype=np.int64)[order][liked],
                          "time": time[liked]})
    return plays.drop_duplicates(["session", "track"])  # session order: the first play stays


def session_pairs(events: pd.DataFrame, track_ids: np.ndarray, item_artist: np.ndarray, threshold: float,
                  window: int) -> tuple[np.ndarray, np.ndarray]:
    """(int32 [P, 2] (earlier item, later item), float32 [P] the later one's time) over the kept
    items ``track_ids`` (artist codes ``item_artist``); empty when ``window`` is 0."""
    if window == 0:
        return np.zeros((0, 2), np.int32), np.zeros(0, np.float32)
    plays = session_positives(events, threshold)
    item = np.searchsorted(track_ids, plays["track"].to_numpy())
    kept = (item < len(track_ids)) & (track_ids[np.minimum(item, len(track_ids) - 1)] == plays["track"].to_numpy())
    s, i, t = plays["session"].to_numpy()[kept], item[kept], plays["time"].to_numpy()[kept]
    first, later, weight = [], [], []
    for d in range(1, window + 1):
        ok = (s[d:] == s[:-d]) & (item_artist[i[d:]] != item_artist[i[:-d]])
        first.append(i[:-d][ok])
        later.append(i[d:][ok])
        weight.append(t[d:][ok])
    pairs = np.stack([np.concatenate(first), np.concatenate(later)], axis=1).astype(np.int32)
    return pairs, np.concatenate(weight).astype(np.float32)


def artist_vectors(events: pd.DataFrame, artist_of: np.ndarray, threshold: float, dim: int,
                   seed: int = 0) -> np.ndarray:
    """float32 [N, dim]: each catalog track's artist's co-occurrence vector (unit length; zeros for
    an artist never liked beside another). ``artist_of``: int [N] artist code of each track."""
    n_tracks = len(artist_of)
    if dim == 0:
        return np.zeros((n_tracks, 0), np.float32)
    plays = session_positives(events, threshold)
    met = pd.DataFrame({"session": plays["session"].to_numpy(),
                        "artist": artist_of[plays["track"].to_numpy()]}).drop_duplicates()
    both = met.merge(met, on="session")
    both = both[both["artist_x"] != both["artist_y"]]
    n_artists = int(artist_of.max()) + 1 if n_tracks else 0
    counts = sp.coo_matrix((np.ones(len(both)), (both["artist_x"], both["artist_y"])),
                           shape=(n_artists, n_artists)).tocsr()
    counts.sum_duplicates()
    vectors = np.zeros((n_artists, dim), np.float32)
    seen = np.flatnonzero(np.asarray(counts.sum(axis=1)).ravel() > 0)
    if len(seen) > dim + 1:  # svds needs k < min(shape)
        ppmi = _ppmi(counts)[seen][:, seen]
        v0 = np.random.default_rng(seed).standard_normal(len(seen))
        u, s, _ = svds(ppmi, k=dim, v0=v0)
        vec = u * np.sqrt(s)
        vectors[seen] = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
    return vectors[artist_of]


def _ppmi(counts: sp.csr_matrix) -> sp.csr_matrix:
    """max(0, log(c_ab · total / (c_a · c_b))) of a symmetric count matrix, sparse."""
    rows = np.asarray(counts.sum(axis=1)).ravel()
    coo = counts.tocoo()
    pmi = np.log(coo.data * rows.sum() / (rows[coo.row] * rows[coo.col]))
    keep = pmi > 0
    return sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)
