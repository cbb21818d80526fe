"""Generator v2: a world shaped like the course's own files (its known statistics).

What it reproduces, by construction:

* users hold exactly ``n_interests`` distinct interests, drawn from a mild log-normal taste
  weight per track that is independent of popularity (so ~21k distinct interest tracks over
  30k slots and a handful of users at most per track, as in the course's ``users.json``);
  each interest comes with probability ``interest_coherence`` from the user's home taste
  cluster (drawn ∝ the cluster's taste weight, so every track's marginal chance is unchanged)
  — how coherent a listener's tastes are, which the course's marginal statistics leave free;
* artist sizes: a share ``single_artist_share`` of artists has one track, the others
  ``2 + multinomial(log-normal weights)`` (median 1, 90th percentile ≈ 11, largest ≈ 80 for
  11,500 artists over 50,000 tracks);
* genre is a coarse public label derived from the artist's latent taste cluster (clusters have
  Zipf sizes and map onto genres in contiguous blocks, so one genre dominates; the label is
  often missing, sometimes wrong) and is **not** an input of the embedding: the label has its
  own random stream, so changing any genre setting leaves ``tracks.npy`` byte-identical;
* the hidden embedding has latent taste clusters, artists and tracks, plus a component on
  one shared direction ``u`` whose size varies per track (log-normal, spread ``hub_sigma``):
  a few broadly liked "hub" tracks, as collaborative-filtering embeddings tend to have::

      e = h · u + c[cluster] + a[artist] + t[track],   h = hub_m0 · exp(hub_sigma·ξ − hub_sigma²/2)

Each part draws from its own child of ``SeedSequence(seed)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_bridge.world import Users, World
from sim_bridge.worldgen import catalog_of, users_of

_STREAMS = ("artists", "popularity", "embedding", "genre", "users")


@dataclass(frozen=True)
class WorldGenV2Config:
    """Parameters of a v2 world; ``configs/world_v2.yaml`` documents each one."""

    generator: str = "v2"
    seed: int = 7
    n_tracks: int = 50_000
    dim: int = 100
    n_users: int = 10_000
    n_interests: int = 3
    interest_sigma: float = 0.55
    interest_coherence: float = 1.0
    n_artists: int = 11_500
    single_artist_share: float = 0.56
    artist_size_sigma: float = 0.7
    artist_pop_sigma: float = 1.0
    track_pop_sigma: float = 1.0
    hub_pop_coupling: float = 0.2
    pop_scale: float = 1000.0
    n_clusters: int = 15
    cluster_zipf: float = 1.0
    n_genres: int = 15
    genre_noise: float = 0.2
    missing_genre_share: float = 0.4
    hub_m0: float = 0.33
    hub_sigma: float = 0.8
    cluster_scale: float = 1.5
    artist_scale: float = 3.25
    track_scale: float = 1.5
    consume_bias_high: float = 10.0

    def __post_init__(self) -> None:
        if self.generator != "v2":
            raise ValueError(f"generator must be 'v2' for these parameters, got {self.generator!r}")
        for name in ("n_tracks", "dim", "n_users", "n_interests", "n_artists", "n_clusters", "n_genres"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim < 2:
            raise ValueError(f"dim must be >= 2, got {self.dim}")
        if self.n_interests > self.n_tracks:
            raise ValueError(f"n_interests ({self.n_interests}) must be <= n_tracks ({self.n_tracks})")
        for name in ("single_artist_share", "genre_noise", "missing_genre_share", "interest_coherence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        n_single = round(self.single_artist_share * self.n_artists)
        if n_single + 2 * (self.n_artists - n_single) > self.n_tracks:
            raise ValueError(f"n_tracks ({self.n_tracks}) too small for {self.n_artists} artists "
                             f"with single_artist_share {self.single_artist_share}")
        for name in ("interest_sigma", "artist_size_sigma", "hub_sigma", "cluster_scale", "artist_scale",
                     "track_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def generate_world_v2(cfg: WorldGenV2Config) -> World:
    """Generate a v2 world; the same config (seed included) gives the same arrays."""
    rng = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(5))))
    track_artist = artist_of_tracks(cfg, rng["artists"])
    shares = 1.0 / np.arange(1, cfg.n_clusters + 1) ** cfg.cluster_zipf
    artist_cluster = rng["artists"].choice(cfg.n_clusters, size=cfg.n_artists, p=shares / shares.sum())
    xi = rng["embedding"].normal(size=cfg.n_tracks)  # hub score of each track
    pop = _popularity(cfg, rng["popularity"], track_artist, xi)
    embeddings = _embeddings(cfg, rng["embedding"], artist_cluster[track_artist], track_artist, xi)
    genre = _genre_labels(cfg, rng["genre"], artist_cluster, track_artist)
    users = _users(cfg, rng["users"], artist_cluster[track_artist])
    return World(catalog_of(track_artist, genre, pop), embeddings, users)


def artist_of_tracks(cfg: WorldGenV2Config, rng: np.random.Generator) -> np.ndarray:
    """Artist of each track (tracks sorted by artist): singles, then 2 + multinomial sizes."""
    n_single = round(cfg.single_artist_share * cfg.n_artists)
    n_multi = cfg.n_artists - n_single
    weights = rng.lognormal(0.0, cfg.artist_size_sigma, size=n_multi)
    extra = rng.multinomial(cfg.n_tracks - n_single - 2 * n_multi, weights / weights.sum()) if n_multi else []
    sizes = np.concatenate([np.ones(n_single, dtype=np.int64), 2 + np.asarray(extra, dtype=np.int64)])
    sizes = sizes[rng.permutation(cfg.n_artists)]  # artist ids carry no size order
    return np.repeat(np.arange(cfg.n_artists), sizes)


def _popularity(cfg, rng, track_artist, xi) -> np.ndarray:
    artist_pop = rng.lognormal(0.0, cfg.artist_pop_sigma, size=cfg.n_artists)
    track_pop = rng.lognormal(0.0, cfg.track_pop_sigma, size=cfg.n_tracks)
    scale = cfg.pop_scale * artist_pop[track_artist] * track_pop * np.exp(cfg.hub_pop_coupling * xi)
    return np.maximum(1, np.round(scale)).astype(np.int64)


def _orthogonal(rng: np.random.Generator, n: int, u: np.ndarray, rms: float) -> np.ndarray:
    """n Gaussian vectors orthogonal to unit ``u`` with RMS length ``rms``."""
    g = rng.normal(0.0, rms / np.sqrt(len(u) - 1), size=(n, len(u)))
    return g - np.outer(g @ u, u)


def _embeddings(cfg, rng, track_cluster, track_artist, xi) -> np.ndarray:
    u = rng.normal(size=cfg.dim)
    u /= np.linalg.norm(u)
    hub = cfg.hub_m0 * np.exp(cfg.hub_sigma * xi - cfg.hub_sigma**2 / 2)
    cluster = _orthogonal(rng, cfg.n_clusters, u, cfg.cluster_scale)
    artist = _orthogonal(rng, cfg.n_artists, u, cfg.artist_scale)
    track = _orthogonal(rng, cfg.n_tracks, u, cfg.track_scale)
    emb = np.outer(hub, u) + cluster[track_cluster] + artist[track_artist] + track
    return emb.astype(np.float32)


def _genre_labels(cfg, rng, artist_cluster, track_artist) -> np.ndarray:
    """Coarse label: clusters map onto genres in contiguous blocks (the largest clusters share
    genre 0); a ``genre_noise`` share of artists gets another artist's genre; a
    ``missing_genre_share`` share of tracks has none."""
    cluster_genre = np.arange(cfg.n_clusters) * cfg.n_genres // cfg.n_clusters
    artist_genre = cluster_genre[artist_cluster]
    noisy = rng.random(cfg.n_artists) < cfg.genre_noise
    artist_genre[noisy] = artist_genre[rng.integers(cfg.n_artists, size=int(noisy.sum()))]
    names = np.array([f"genre_{g:02d}" for g in range(cfg.n_genres)], dtype=object)
    genre = names[artist_genre[track_artist]]
    genre[rng.random(cfg.n_tracks) < cfg.missing_genre_share] = None
    return genre


def distinct_interests(rng: np.random.Generator, weights: np.ndarray, cluster: np.ndarray, coherence: float,
                       n_users: int, k: int) -> np.ndarray:
    """[n_users, k] track ids, each ∝ ``weights`` overall; with probability ``coherence`` a slot
    is drawn within the user's home cluster instead. Rows with a repeat are redrawn."""
    order = np.argsort(cluster, kind="stable")  # tracks grouped by cluster
    cum = np.cumsum(weights[order])
    n_clusters = int(cluster.max()) + 1
    mass = np.bincount(cluster, weights=weights, minlength=n_clusters)
    start = np.concatenate([[0.0], np.cumsum(mass)[:-1]])
    out = np.zeros((n_users, k), dtype=np.int64)
    todo = np.arange(n_users)
    while len(todo):
        home = rng.choice(n_clusters, size=len(todo), p=mass / mass.sum())
        inside = rng.random((len(todo), k)) < coherence
        u = rng.random((len(todo), k))
        target = np.where(inside, start[home][:, None] + u * mass[home][:, None], u * cum[-1])
        out[todo] = order[np.minimum(np.searchsorted(cum, target, side="right"), len(cum) - 1)]
        srt = np.sort(out[todo], axis=1)
        todo = todo[(srt[:, 1:] == srt[:, :-1]).any(axis=1)]
    return out


def _users(cfg: WorldGenV2Config, rng: np.random.Generator, track_cluster: np.ndarray) -> Users:
    """Distinct interests by taste weight (not popularity); the rest as v1's users."""
    taste = np.exp(cfg.interest_sigma * rng.normal(size=cfg.n_tracks))
    interests = distinct_interests(rng, taste, track_cluster, cfg.interest_coherence, cfg.n_users, cfg.n_interests)
    return users_of(rng, interests, cfg.consume_bias_high)
