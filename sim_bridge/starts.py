"""Session starts: the ``k`` tracks nearest to an interest track by raw inner product.

Computed once per world for every interest track (in float64, ties broken by track id) and
kept by the simulator, so a session start is a table lookup.
"""
from __future__ import annotations

import faiss
import numpy as np

_CHUNK = 4096


def nearest_by_inner_product(embeddings: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """int64 [len(queries), k]: for each query track, the k tracks with the largest ⟨e_t, e_q⟩.

    faiss screens ``k + 16`` candidates in float32; they are re-ranked in float64 with ties
    broken by track id, so the answer does not depend on BLAS rounding.
    """
    emb32 = np.ascontiguousarray(embeddings, dtype=np.float32)
    k = min(k, len(emb32))
    width = min(len(emb32), k + 16)
    index = faiss.IndexFlatIP(emb32.shape[1])
    index.add(emb32)
    out = np.empty((len(queries), k), dtype=np.int64)
    emb64 = emb32.astype(np.float64)
    for lo in range(0, len(queries), _CHUNK):
        q = queries[lo : lo + _CHUNK]
        _, cand = index.search(emb32[q], width)  # [chunk, width]
        scores = np.einsum("cwd,cd->cw", emb64[cand], emb64[q])
        order = np.lexsort((cand, -scores), axis=1)
        out[lo : lo + _CHUNK] = np.take_along_axis(cand, order, axis=1)[:, :k]
    return out


class StartTable:
    """Neighbour lists for a fixed set of interest tracks; ``lookup`` maps tracks to rows."""

    def __init__(self, embeddings: np.ndarray, interest_tracks: np.ndarray, k: int):
        self.tracks = np.unique(interest_tracks[interest_tracks >= 0])
        self.neighbours = nearest_by_inner_product(embeddings, self.tracks, k)  # [T, k]

    def first_tracks(self, interest: np.ndarray, position: np.ndarray) -> np.ndarray:
        """The ``position``-th nearest neighbour of each ``interest`` track."""
        rows = np.searchsorted(self.tracks, interest)
        return self.neighbours[rows, position]
