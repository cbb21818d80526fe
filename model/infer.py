"""Inference: tower embeddings → top-k tracks per user (or per track) by L2 distance; exports.

Lists are exact (faiss ``IndexFlatL2``). :class:`ItemNeighbours` computes per-track lists on
demand: a simulation reads only the lists of the tracks its sessions anchor on."""
from __future__ import annotations

import copy
from pathlib import Path

import faiss
import numpy as np
import torch

from sim_bridge.contract.files import atomic_path

from model.dssm import DSSM, resolve_device
from model.features import TrainingData


@torch.no_grad()
def user_embeddings(model: DSSM, data: TrainingData, device: str = "auto", batch_size: int = 16384) -> np.ndarray:
    """float32 [U, D]: each user row's full history (every positive, nothing masked) through the
    user tower."""
    dev = resolve_device(device)
    model = model.to(dev).eval()
    hist = torch.as_tensor(data.serving_history, dtype=torch.int64)
    out = [model.user_tower(hist[s:s + batch_size].to(dev)).cpu() for s in range(0, len(hist), batch_size)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, model.cfg.embedding_dim), np.float32)


@torch.no_grad()
def item_embeddings(model: DSSM, data: TrainingData | None = None, device: str = "auto",
                    batch_size: int = 65536) -> np.ndarray:
    """float32 [K, D]: every kept item (row i ↔ catalog track ``data.track_ids[i]``)."""
    dev = resolve_device(device)
    model = model.to(dev).eval()
    n = model.dims["n_items"]
    out = [model.item_tower(torch.arange(s, min(n, s + batch_size), device=dev)).cpu()
           for s in range(0, n, batch_size)]
    return torch.cat(out).numpy().astype(np.float32)


BLAS_FROM_QUERIES = 16  # a faiss search of at least this many queries is one matrix product (BLAS)


def flat_search(index: faiss.IndexFlatL2, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search`` (distances, rows), as a matrix product from ``BLAS_FROM_QUERIES`` queries on.

    faiss switches from scanning the items query by query to one BLAS product when queries ×
    dimensions reaches ``distance_compute_blas_threshold`` (128,000 in faiss 1.15: 2,000 queries of
    64 dimensions). The scan costs the same a query at any batch size, and the product is cheaper
    a query from a few queries on (``benchmarks/bench_flat_search.py``; see docs/results.md); a
    simulation reads its per-track lists a few to a few hundred at a time.
    """
    faiss.cvar.distance_compute_blas_threshold = BLAS_FROM_QUERIES * index.d
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def top_k_l2(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """int64 [U, min(k, K)]: nearest item rows by L2 distance, nearest first (ties: faiss's order)."""
    k = min(k, len(items))
    index = faiss.IndexFlatL2(items.shape[1])
    index.add(np.ascontiguousarray(items, dtype=np.float32))
    _, rows = flat_search(index, users, k)
    return rows.astype(np.int64)


def recommend(model: DSSM, data: TrainingData, k: int = 100, device: str = "auto") -> dict[int, np.ndarray]:
    """{user id: int64 [min(k, K)] catalog track ids, nearest first} for every user with a history."""
    rows = top_k_l2(user_embeddings(model, data, device), item_embeddings(model, data, device), k)
    tracks = data.track_ids[rows]  # [U, k] catalog ids
    return {int(u): tracks[i] for i, u in enumerate(data.user_ids)}


def item_recommendations(model: DSSM, data: TrainingData, k: int = 100, device: str = "auto") -> dict[int, np.ndarray]:
    """{track id: int64 [min(k, K-1)] nearest other kept tracks by L2 between item embeddings}
    (every list of :class:`ItemNeighbours`)."""
    return ItemNeighbours.of(model, data, k=k, device=device).to_dict()


RERANK_MARGIN = 16  # extra faiss candidates per list re-ranked by exact distance (ItemNeighbours)


class ItemNeighbours:
    """Exact per-track lists, each computed when first read and kept: the ``k`` nearest other
    kept tracks of a track by L2 between item embeddings, nearest first (catalog ids).

    Read like the int32 table [n_tracks, k] the i2i policies serve from (``table[tracks]`` for an
    int array of any shape; a track without an embedding has a row of -1). A simulation reads the
    rows of the tracks its sessions anchor on — for a rung's sessions a small part of the tracks —
    so a rung pays for those rows only; :meth:`to_dict` computes the rest (a checkpoint's
    lists). The embeddings are a copy taken at construction: the lists stay those of the weights
    they were made from while training goes on. :meth:`truncated` views share the rows computed.
    """

    def __init__(self, embeddings: np.ndarray, track_ids: np.ndarray, n_tracks: int | None, k: int):
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.track_ids = np.asarray(track_ids, dtype=np.int64)
        self.index = faiss.IndexFlatL2(self.embeddings.shape[1])
        self.index.add(self.embeddings)
        self.width = self.k = max(0, min(k, len(self.track_ids) - 1))
        n_tracks = int(self.track_ids.max(initial=-1)) + 1 if n_tracks is None else n_tracks
        self.row_of = np.full(n_tracks, -1, dtype=np.int64)
        self.row_of[self.track_ids] = np.arange(len(self.track_ids))
        self.table = np.full((n_tracks, max(self.k, 1)), -1, dtype=np.int32)
        self.known = self.row_of < 0  # tracks without an embedding: nothing to compute

    @classmethod
    def of(cls, model: DSSM, data: TrainingData, n_tracks: int | None = None, k: int = 100,
           device: str = "auto") -> "ItemNeighbours":
        """``model``'s lists (none computed yet) over the catalog's ``n_tracks`` tracks (default:
        up to the largest kept id)."""
        return cls(item_embeddings(model, data, device), data.track_ids, n_tracks, k)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.table), self.width

    @property
    def computed(self) -> int:
        """How many tracks' lists have been computed so far."""
        return int(self.known.sum() - (self.row_of < 0).sum())

    def __getitem__(self, tracks: np.ndarray) -> np.ndarray:
        tracks = np.asarray(tracks)
        self._compute(tracks[~self.known[tracks]])
        return self.table[tracks][..., :self.width]

    def truncated(self, k: int) -> "ItemNeighbours":
        """The first ``k`` entries of every list, sharing the rows computed (and computed later)."""
        view = copy.copy(self)
        view.width = min(k, self.width)
        return view

    def compute_all(self) -> "ItemNeighbours":
        """Every list not computed yet, now, in one batch (faster per list than as read)."""
        self._compute(np.flatnonzero(~self.known))
        return self

    def to_dict(self) -> dict[int, np.ndarray]:
        """{track id: int64 [width]} for every kept track, the missing lists computed now."""
        self.compute_all()
        rows = self.table[self.track_ids, :self.width].astype(np.int64)
        return {int(t): rows[i] for i, t in enumerate(self.track_ids)}

    def _compute(self, tracks: np.ndarray) -> None:
        tracks = np.unique(tracks)
        if len(tracks) and self.k:
            self.table[tracks, :self.k] = self.track_ids[self._nearest_others(self.row_of[tracks])]
        self.known[tracks] = True

    def _nearest_others(self, rows: np.ndarray, chunk: int = 256) -> np.ndarray:
        """int64 [len(rows), k]: each row's k nearest other rows, nearest first.

        faiss ranks by |x|² + |y|² − 2x·y, whose float32 rounding reorders near-ties differently
        from one batch of queries to another; its top k + 1 + RERANK_MARGIN are re-ranked by the
        squared differences themselves, ties by row, so a track's list is the same whenever and
        with whichever others it is computed — unless more than RERANK_MARGIN tracks lie within
        that rounding of its k-th nearest. Crowded embeddings do that (a nearly collapsed model's,
        whose items share few distinct embeddings; see docs/results.md). Within one
        :class:`ItemNeighbours` a list is computed once, so what one trial serves is consistent.
        """
        queries = self.embeddings[rows]
        _, found = flat_search(self.index, queries, min(self.k + 1 + RERANK_MARGIN, len(self.embeddings)))
        for s in range(0, len(rows), chunk):  # [chunk, candidates, D] at a time
            diff = self.embeddings[found[s:s + chunk]] - queries[s:s + chunk, None, :]
            dist = np.einsum("qcd,qcd->qc", diff, diff)
            found[s:s + chunk] = np.take_along_axis(found[s:s + chunk], np.lexsort((found[s:s + chunk], dist)), axis=1)
        others = found != rows[:, None]
        # drop the row itself (or, when exact ties kept it out of its own list, the farthest entry)
        return np.take_along_axis(found, np.argsort(~others, axis=1, kind="stable")[:, :self.k], axis=1)


def write_item_embeddings(out_dir: str | Path, embeddings: np.ndarray, track_ids: np.ndarray) -> None:
    """``item_embeddings.npy`` (float32 [K, D]) and ``item_ids.npy`` (int64 [K] catalog ids), atomically."""
    out_dir = Path(out_dir)
    if len(embeddings) != len(track_ids):
        raise ValueError(f"{len(embeddings)} embeddings but {len(track_ids)} ids")
    for name, arr in (("item_embeddings.npy", embeddings.astype(np.float32)),
                      ("item_ids.npy", np.asarray(track_ids, dtype=np.int64))):
        with atomic_path(out_dir / name) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
