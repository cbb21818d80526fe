"""World generator v1, the first world, calibrated to the course's three baselines; and the parts
every generator shares: the public catalog's layout (:func:`catalog_of`), the users' listening
parameters (:func:`users_of`) and offsets orthogonal to one direction (:func:`orthogonal_offsets`).

Hierarchy: genres (Zipf shares) → artists (log-normal sizes, one genre each) → tracks. Popularity
is log-normal at artist and track level. Embeddings::

    e = (m0 + m1 · z) · u  +  g[genre] + a[artist] + t[track]

with ``u`` one unit "popularity direction", ``z`` the standardised log popularity and the
genre/artist/track offsets Gaussian, orthogonal to ``u``, with RMS lengths sg, sa, st.
``genre_scale`` (sg) decides how much room there is above StickyArtist: it is the knob that
makes "same genre, other artist" worth listening to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog
from sim_bridge.world import (
    DEFAULT_ARTIST_DISCOUNT_GAMMA,
    DEFAULT_INTEREST_NEIGHBOURS,
    DEFAULT_SESSION_BUDGET,
    Users,
    World,
)


@dataclass(frozen=True)
class WorldGenConfig:
    """Parameters of a v1 world; ``configs/world_v1.yaml`` holds its calibrated values."""

    generator: str = "v1"
    seed: int = 7
    n_tracks: int = 50_000
    dim: int = 100
    n_users: int = 10_000
    n_interests: int = 3
    n_genres: int = 30
    genre_zipf: float = 0.7
    n_artists: int = 8_000
    artist_size_sigma: float = 1.2
    artist_pop_sigma: float = 1.0
    track_pop_sigma: float = 1.0
    pop_scale: float = 1000.0
    missing_genre_share: float = 0.02
    pop_m0: float = 0.65
    pop_m1: float = 0.07
    genre_scale: float = 1.5
    artist_scale: float = 2.70
    track_scale: float = 1.5
    consume_bias_high: float = 10.0

    def __post_init__(self) -> None:
        if self.generator != "v1":
            raise ValueError(f"generator must be 'v1' for these parameters, got {self.generator!r}")
        for name in ("n_tracks", "dim", "n_users", "n_interests", "n_genres", "n_artists"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_artists > self.n_tracks:
            raise ValueError(f"n_artists ({self.n_artists}) must be <= n_tracks ({self.n_tracks})")
        if self.dim < 2:
            raise ValueError(f"dim must be >= 2, got {self.dim}")



def generate_world(cfg: WorldGenConfig) -> World:
    """Generate a world; the same config (seed included) gives the same arrays."""
    rng = np.random.default_rng(cfg.seed)
    artist_genre = rng.choice(cfg.n_genres, size=cfg.n_artists, p=_zipf_shares(cfg.n_genres, cfg.genre_zipf))
    track_artist = _artist_of_tracks(cfg, rng)
    pop = _popularity(cfg, rng, track_artist)
    embeddings = _embeddings(cfg, rng, artist_genre, track_artist, pop)
    catalog = _catalog(cfg, rng, artist_genre, track_artist, pop)
    users = _users(cfg, rng, pop)
    return World(catalog, embeddings, users)


def _zipf_shares(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def _artist_of_tracks(cfg: WorldGenConfig, rng: np.random.Generator) -> np.ndarray:
    """Artist sizes 1 + multinomial(log-normal weights); tracks sorted by artist."""
    weights = rng.lognormal(0.0, cfg.artist_size_sigma, size=cfg.n_artists)
    extra = rng.multinomial(cfg.n_tracks - cfg.n_artists, weights / weights.sum())
    return np.repeat(np.arange(cfg.n_artists), 1 + extra)


def _popularity(cfg: WorldGenConfig, rng: np.random.Generator, track_artist: np.ndarray) -> np.ndarray:
    artist_pop = rng.lognormal(0.0, cfg.artist_pop_sigma, size=cfg.n_artists)
    track_pop = rng.lognormal(0.0, cfg.track_pop_sigma, size=cfg.n_tracks)
    return np.maximum(1, np.round(cfg.pop_scale * artist_pop[track_artist] * track_pop)).astype(np.int64)


def orthogonal_offsets(rng: np.random.Generator, n: int, u: np.ndarray, rms: float) -> np.ndarray:
    """n Gaussian vectors orthogonal to unit ``u`` with RMS length ``rms``."""
    dim = len(u)
    g = rng.normal(0.0, rms / np.sqrt(dim - 1), size=(n, dim))
    return g - np.outer(g @ u, u)


def _embeddings(cfg, rng, artist_genre, track_artist, pop) -> np.ndarray:
    u = rng.normal(size=cfg.dim)
    u /= np.linalg.norm(u)
    log_pop = np.log(pop)
    z = (log_pop - log_pop.mean()) / log_pop.std()
    genre = orthogonal_offsets(rng, cfg.n_genres, u, cfg.genre_scale)
    artist = orthogonal_offsets(rng, cfg.n_artists, u, cfg.artist_scale)
    track = orthogonal_offsets(rng, cfg.n_tracks, u, cfg.track_scale)
    emb = np.outer(cfg.pop_m0 + cfg.pop_m1 * z, u) + genre[artist_genre[track_artist]] + artist[track_artist] + track
    return emb.astype(np.float32)


def _catalog(cfg, rng, artist_genre, track_artist, pop) -> Catalog:
    genre_names = np.array([f"genre_{g:02d}" for g in range(cfg.n_genres)], dtype=object)
    genre = genre_names[artist_genre[track_artist]]
    genre[rng.random(cfg.n_tracks) < cfg.missing_genre_share] = None
    return catalog_of(track_artist, genre, pop)


def catalog_of(track_artist: np.ndarray, genre: np.ndarray, pop: np.ndarray) -> Catalog:
    """The public catalog of sorted ``track_artist`` codes: ``artist_00042``, ``track_00042_003``."""
    n_tracks = len(track_artist)
    position = np.arange(n_tracks) - np.searchsorted(track_artist, track_artist)
    return Catalog(pd.DataFrame({
        C.TRACK: np.arange(n_tracks),
        C.ARTIST: [f"artist_{a:05d}" for a in track_artist],
        C.TITLE: [f"track_{a:05d}_{p:03d}" for a, p in zip(track_artist, position)],
        C.GENRE: genre,
        C.POP: pop,
    }))


def _users(cfg: WorldGenConfig, rng: np.random.Generator, pop: np.ndarray) -> Users:
    """Interests drawn ∝ popularity; the rest as :func:`users_of`."""
    interests = rng.choice(cfg.n_tracks, size=(cfg.n_users, cfg.n_interests), p=pop / pop.sum())
    return users_of(rng, interests, cfg.consume_bias_high)


def users_of(rng: np.random.Generator, interests: np.ndarray, consume_bias_high: float) -> Users:
    """Users holding ``interests`` [n, k]; bias ~ U(0, high); sharpness = U(1, 2) ** ±1 (drawn
    from ``rng`` in that order); the listener model's defaults for the rest."""
    n, k = interests.shape
    bias = rng.uniform(0.0, consume_bias_high, size=n)
    sign = rng.choice([-1.0, 1.0], size=n)
    sharpness = rng.uniform(1.0, 2.0, size=n) ** sign
    return Users(
        user=np.arange(n, dtype=np.int64),
        interests=interests.astype(np.int64),
        n_interests=np.full(n, k, dtype=np.int64),
        consume_bias=bias,
        consume_sharpness=sharpness,
        session_budget=np.full(n, DEFAULT_SESSION_BUDGET, dtype=np.int64),
        artist_discount_gamma=np.full(n, DEFAULT_ARTIST_DISCOUNT_GAMMA),
        interest_neighbours=np.full(n, DEFAULT_INTEREST_NEIGHBOURS, dtype=np.int64),
    )
