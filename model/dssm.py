"""The seminar's two-tower DSSM and the seed's options (docs/seed.md).

Item tower (item index → embedding):
    genres [G] ─linear, no bias─► hidden [H]
    [pop, hidden (, item-id embedding) (, artist embedding) (, co-occurrence C)] ─dense block─► dense [D]
    [hidden (, co-occurrence C), dense] ─linear─► out [D] ─norm─►
User tower (padded history of catalog ids + 1 → embedding):
    EmbeddingBag(n_tracks + 1, D, mean, padding 0) ─► bag [D] ─dense block─► dense [D]
    [bag, dense] ─linear─► out [D] ─norm─►
Dense block: depth 1 = Linear(in, D) + act (the seminar); depth n ≥ 2 = the seed's bottleneck
in → D/2 → … → D, an activation after every layer (so depth 1 is exactly the seminar's layer).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sim_bridge.contract.files import ConfigError

NORMS = ("none", "layernorm", "l2")
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


@dataclass
class DSSMConfig:
    """Model shape. Defaults are the seminar's; ``margin`` is the triplet loss margin (L2)."""

    hidden_dim: int = 32
    embedding_dim: int = 64
    dense_depth: int = 1
    norm: str = "none"  # none | layernorm | l2 (unit-length outputs)
    activation: str = "relu"
    margin: float = 0.4
    item_id_embedding: bool = False  # learn a per-item vector in the item tower (off in the seminar)
    artist_embedding: bool = False  # learn a per-artist vector from the public catalog's artist
    sparse_bag: bool = True  # sparse gradients for the 50,001-row bag (LazyAdam: touched rows only)

    def __post_init__(self) -> None:
        for key in ("hidden_dim", "embedding_dim", "dense_depth"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key}: must be >= 1, got {getattr(self, key)}")
        if self.dense_depth > 1 and self.embedding_dim < 2:
            raise ConfigError("model.embedding_dim: must be >= 2 for a bottleneck dense block")
        if self.norm not in NORMS:
            raise ConfigError(f"model.norm: expected one of {NORMS}, got {self.norm!r}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"model.activation: expected one of {tuple(ACTIVATIONS)}, got {self.activation!r}")
        if not self.margin > 0:
            raise ConfigError(f"model.margin: must be > 0, got {self.margin}")


def dense_block(cfg: DSSMConfig, in_dim: int) -> nn.Sequential:
    """in → D (depth 1) or in → D/2 → … → D (bottleneck), activation after each layer."""
    d = cfg.embedding_dim
    widths = [in_dim] + [max(1, d // 2)] * (cfg.dense_depth - 1) + [d]
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), ACTIVATIONS[cfg.activation]()]
    return nn.Sequential(*layers)


class OutputNorm(nn.Module):
    """none | LayerNorm | L2 normalisation of a tower's output."""

    def __init__(self, kind: str, dim: int):
        super().__init__()
        self.kind = kind
        self.ln = nn.LayerNorm(dim) if kind == "layernorm" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ln is not None:
            return self.ln(x)
        return F.normalize(x, dim=-1) if self.kind == "l2" else x


class ItemTower(nn.Module):
    """Item index [B] → embedding [B, D]; item features live in buffers (saved with the weights)."""

    def __init__(self, cfg: DSSMConfig, n_items: int, n_genres: int, n_artists: int = 0, n_cooc: int = 0):
        super().__init__()
        self.register_buffer("genres", torch.zeros(n_items, n_genres))  # [K, G]
        self.register_buffer("pop", torch.zeros(n_items))  # [K]
        # [K, C] artist co-occurrence vectors, or None (then not in the state dict)
        self.register_buffer("cooc", torch.zeros(n_items, n_cooc) if n_cooc else None)
        self.genre_proj = nn.Linear(n_genres, cfg.hidden_dim, bias=False)
        d = cfg.embedding_dim
        self.item_id = nn.Embedding(n_items, d, sparse=cfg.sparse_bag) if cfg.item_id_embedding else None
        self.artist_emb = None
        if cfg.artist_embedding:
            self.register_buffer("artist", torch.zeros(n_items, dtype=torch.long))  # [K] artist code
            self.artist_emb = nn.Embedding(max(n_artists, 1), d, sparse=cfg.sparse_bag)
        extra = d * (cfg.item_id_embedding + cfg.artist_embedding)
        self.dense = dense_block(cfg, 1 + cfg.hidden_dim + extra + n_cooc)
        self.out = nn.Linear(cfg.hidden_dim + cfg.embedding_dim + n_cooc, cfg.embedding_dim)
        self.norm = OutputNorm(cfg.norm, cfg.embedding_dim)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        hidden = self.genre_proj(self.genres[items])  # [B, H]
        parts = [self.pop[items, None], hidden]  # [B, 1], [B, H]
        if self.item_id is not None:
            parts.append(self.item_id(items))  # [B, D]
        if self.artist_emb is not None:
            parts.append(self.artist_emb(self.artist[items]))  # [B, D]
        skip = [hidden]
        if self.cooc is not None:  # into the dense block and, as is, into the output layer
            parts.append(self.cooc[items])  # [B, C]
            skip.append(self.cooc[items])
        dense = self.dense(torch.cat(parts, dim=1))  # [B, D]
        return self.norm(self.out(torch.cat([*skip, dense], dim=1)))


class UserTower(nn.Module):
    """History [B, L] (catalog id + 1, 0 = padding) → embedding [B, D]."""

    def __init__(self, cfg: DSSMConfig, n_tracks: int):
        super().__init__()
        d = cfg.embedding_dim
        self.bag = nn.EmbeddingBag(n_tracks + 1, d, mode="mean", padding_idx=0, sparse=cfg.sparse_bag)
        self.dense = dense_block(cfg, d)
        self.out = nn.Linear(2 * d, d)
        self.norm = OutputNorm(cfg.norm, d)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.head(self.bag(history))  # bag [B, D]; all-padding rows give zeros

    def head(self, bag: torch.Tensor) -> torch.Tensor:
        """Mean-bag vectors [B, D] → user embeddings [B, D]."""
        return self.norm(self.out(torch.cat([bag, self.dense(bag)], dim=1)))

    def masked_bag(self, uhist: torch.Tensor, inv: torch.Tensor, pos1: torch.Tensor,
                   neg1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean bags of history ``uhist[inv]`` without ``pos1``/``neg1`` (catalog id + 1), each
        distinct one once: (bags [R, D], row [B]) with triplet b's bag ``bags[row[b]]``.

        Same value as ``bag(mask_history(uhist[inv], pos1, neg1))`` row for row, but the bag is
        summed once per *unique* user (uhist [Bu, L]) and the rare own pos/neg entries are
        subtracted: mean = (Σ history − e_pos·[pos ∈ h] − e_neg·[neg ∈ h]) / (count − hits).
        A triplet's bag depends only on its user and on which of its pos/neg its history holds,
        so the ~B / n_negatives triplets of one (user, positive) run share one row: the user
        tower's layers then run on R ≈ B / n_negatives rows instead of B.
        """
        w = self.bag.weight
        hist = uhist[inv]  # [B, L]
        hit_p, hit_n = (hist == pos1[:, None]).any(1), (hist == neg1[:, None]).any(1)  # [B]
        base = w.shape[0]  # keys (user row, pos1 if held, neg1 if held) are distinct int64s
        key = (inv * base + torch.where(hit_p, pos1, 0)) * base + torch.where(hit_n, neg1, 0)
        keys, row = torch.unique(key, return_inverse=True)  # [R], [B]
        first = torch.empty(len(keys), dtype=torch.int64, device=key.device)
        first.scatter_(0, row, torch.arange(len(key), device=key.device))  # a triplet of each key
        inv, pos1, neg1, hit_p, hit_n = inv[first], pos1[first], neg1[first], hit_p[first], hit_n[first]
        sums = F.embedding_bag(uhist, w, mode="sum", padding_idx=0, sparse=self.bag.sparse)  # [Bu, D]
        total = sums[inv]  # [R, D]
        for hit, track1 in ((hit_p, pos1), (hit_n, neg1)):
            rows = hit.nonzero().squeeze(1)
            if len(rows):
                own = F.embedding(track1[rows], w, sparse=self.bag.sparse)  # [h, D]
                total = total.index_add(0, rows, -own)
        count = (uhist[inv] > 0).sum(1) - hit_p.long() - hit_n.long()  # [R]
        return total / count.clamp(min=1).unsqueeze(1).to(total.dtype), row


class DSSM(nn.Module):
    """Two towers scored by L2 distance; trained with a triplet margin loss."""

    def __init__(self, cfg: DSSMConfig, n_tracks: int, n_items: int, n_genres: int, n_artists: int = 0,
                 n_cooc: int = 0):
        super().__init__()
        self.cfg = cfg
        self.dims = {"n_tracks": n_tracks, "n_items": n_items, "n_genres": n_genres, "n_artists": n_artists}
        if n_cooc:
            self.dims["n_cooc"] = n_cooc
        self.item_tower = ItemTower(cfg, n_items, n_genres, n_artists, n_cooc)
        self.user_tower = UserTower(cfg, n_tracks)

    def set_item_features(self, genres, pop, artist=None, cooc=None) -> None:
        """Copy item features (numpy or tensors: genres [K, G], pop [K], artist codes [K],
        co-occurrence vectors [K, C])."""
        self.item_tower.genres.copy_(torch.as_tensor(genres, dtype=torch.float32))
        self.item_tower.pop.copy_(torch.as_tensor(pop, dtype=torch.float32))
        if self.item_tower.cooc is not None:
            self.item_tower.cooc.copy_(torch.as_tensor(cooc, dtype=torch.float32))
        if self.item_tower.artist_emb is not None:
            self.item_tower.artist.copy_(torch.as_tensor(artist, dtype=torch.long))

    def forward(self, history: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """Mean triplet margin loss: history [B, L] (own pos/neg already masked), items [B].

        The plain reference; training uses the equivalent, faster ``grouped_loss``.
        """
        user = self.user_tower(history)
        return F.triplet_margin_loss(user, self.item_tower(pos), self.item_tower(neg), margin=self.cfg.margin, p=2)

    def grouped_loss(self, uhist: torch.Tensor, inv: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                     pos1: torch.Tensor, neg1: torch.Tensor) -> torch.Tensor:
        """Same loss as ``forward`` with each distinct user bag and each unique item computed once.

        uhist [Bu, L] unique users' histories, inv [B] row of each triplet's user in uhist,
        pos/neg [B] item indices, pos1/neg1 [B] their catalog ids + 1 (for the history mask).
        """
        bags, row = self.user_tower.masked_bag(uhist, inv, pos1, neg1)
        user = self.user_tower.head(bags)[row]  # [B, D]: the tower runs once per distinct bag
        return self.triplet_loss(user, pos, neg)

    def triplet_loss(self, user: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """Mean triplet margin loss of user embeddings [B, D] against items pos/neg [B], each
        unique item through the item tower once."""
        items, item_inv = torch.unique(torch.cat([pos, neg]), return_inverse=True)
        emb = self.item_tower(items)[item_inv]  # [2B, D]
        n = len(pos)
        return F.triplet_margin_loss(user, emb[:n], emb[n:], margin=self.cfg.margin, p=2)

    def pair_loss(self, first: torch.Tensor, later: torch.Tensor, neg: torch.Tensor,
                  weight: torch.Tensor) -> torch.Tensor:
        """Session pairs through the item tower alone: the triplet margin loss of (first, later,
        neg) item indices [B], weighted by ``weight`` [B] (the later track's listened time), each
        unique item computed once. What the per-track lists of ``i2i`` are made of."""
        items, inv = torch.unique(torch.cat([first, later, neg]), return_inverse=True)
        emb = self.item_tower(items)[inv]  # [3B, D]
        n = len(first)
        per_pair = F.triplet_margin_loss(emb[:n], emb[n:2 * n], emb[2 * n:], margin=self.cfg.margin, p=2,
                                         reduction="none")
        return (per_pair * weight).sum() / weight.sum().clamp(min=1e-12)

    def sparse_parameters(self) -> list[nn.Parameter]:
        """Parameters with sparse gradients (for LazyAdam); empty when ``sparse_bag`` is off."""
        if not self.cfg.sparse_bag:
            return []
        mods = [self.user_tower.bag, self.item_tower.item_id, self.item_tower.artist_emb]
        return [m.weight for m in mods if m is not None]


def build_model(cfg: DSSMConfig, data) -> DSSM:
    """A DSSM sized for ``data`` (a TrainingData) with its item features loaded."""
    model = DSSM(cfg, data.n_tracks, data.n_items, data.n_genres, data.n_artists, data.item_cooc.shape[1])
    model.set_item_features(data.item_genres, data.item_pop, data.item_artist, data.item_cooc)
    return model


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (buffers such as item features excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def resolve_device(device: str = "auto") -> torch.device:
    """auto → cuda when available, else cpu; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available")
    return torch.device(device)
