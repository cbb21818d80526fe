"""Inference: tower embeddings → top-k tracks per user (or per track) by L2 distance; exports.

Lists are exact (faiss ``IndexFlatL2``) unless ``nprobe`` > 0 asks for approximate ones (faiss
``IndexIVFFlat``: the items in ``cells(K)`` k-means cells, each query scanning the ``nprobe``
nearest cells) — what the search's rungs use to rank trials cheaply; exported and evaluated
lists are always exact."""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import torch

from sim_bridge.contract.files import atomic_path

from model.dssm import DSSM, resolve_device
from model.features import TrainingData


@torch.no_grad()
def user_embeddings(model: DSSM, data: TrainingData, device: str = "auto", batch_size: int = 16384) -> np.ndarray:
    """float32 [U, D]: each user row's full history (nothing masked) through the user tower."""
    dev = resolve_device(device)
    model = model.to(dev).eval()
    hist = torch.as_tensor(data.history, dtype=torch.int64)
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


def ivf_cells(n_items: int) -> int:
    """k-means cells of an approximate index over ``n_items`` items: about 4·√K (faiss's rule of
    thumb), at least 1, and at most K / 39 so every cell has the 39 points k-means wants."""
    return max(1, min(int(4 * np.sqrt(n_items)), n_items // 39))


def top_k_l2(users: np.ndarray, items: np.ndarray, k: int, nprobe: int = 0) -> np.ndarray:
    """int64 [U, min(k, K)]: nearest item rows by L2 distance, nearest first (ties: faiss's order).

    ``nprobe`` 0: exact (IndexFlatL2). Otherwise approximate (IndexIVFFlat over
    :func:`ivf_cells` cells, ``nprobe`` of them scanned per query; k-means seeded, so the same
    inputs give the same lists); a query whose cells hold fewer than k items is padded with -1.
    """
    k = min(k, len(items))
    items = np.ascontiguousarray(items, dtype=np.float32)
    cells = ivf_cells(len(items))
    if nprobe and cells > nprobe:
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(items.shape[1]), items.shape[1], cells)
        index.train(items)
        index.nprobe = nprobe
    else:
        index = faiss.IndexFlatL2(items.shape[1])
    index.add(items)
    _, rows = index.search(np.ascontiguousarray(users, dtype=np.float32), k)
    return rows.astype(np.int64)


def recommend(model: DSSM, data: TrainingData, k: int = 100, device: str = "auto") -> dict[int, np.ndarray]:
    """{user id: int64 [min(k, K)] catalog track ids, nearest first} for every user with a history."""
    rows = top_k_l2(user_embeddings(model, data, device), item_embeddings(model, data, device), k)
    tracks = data.track_ids[rows]  # [U, k] catalog ids
    return {int(u): tracks[i] for i, u in enumerate(data.user_ids)}


def item_recommendations(model: DSSM, data: TrainingData, k: int = 100, device: str = "auto",
                         nprobe: int = 0) -> dict[int, np.ndarray]:
    """{track id: int64 [min(k, K-1)] nearest other kept tracks by L2 between item embeddings}
    (approximate when ``nprobe`` > 0: see :func:`top_k_l2`)."""
    items = item_embeddings(model, data, device)
    rows = top_k_l2(items, items, k + 1, nprobe)  # [K, k+1]; usually the item itself comes first
    out = {}
    for i, track in enumerate(data.track_ids):
        keep = (rows[i] != i) & (rows[i] >= 0)
        out[int(track)] = data.track_ids[rows[i][keep][:k]]
    return out


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
