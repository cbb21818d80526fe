"""World generators v2 and v3.

**v2**, a world shaped like the course's own files (its known statistics). What it reproduces,
by construction:

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

  and, optionally (``band_scale`` > 0), a popularity band ``b(z)``: a smooth random curve over the
  standardised log popularity, centred over the catalog, so tracks of similar popularity are
  alike (correlation length ``band_length`` in units of z) without popular tracks being liked
  by everyone — the one part of the embedding the DSSM's item tower can read from its
  popularity input. Off in the default world.

Each part draws from its own child of ``SeedSequence(seed)``.

**v3**, v2's hidden truth (same parameters: byte-identical ``tracks.npy`` and ``users.json``,
the same artists) with a public catalog in the course's exact schema: genre lists of integer
ids, a standardised float pop (a rank-preserving map of v2's counts), albums, durations and
Cyrillic names, drawn from one more child stream (:mod:`sim_bridge.course_catalog`).

The public catalog's layout of v2 and the users' listening parameters are v1's
(:mod:`sim_bridge.worldgen_v1`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from sim_bridge.course_catalog import CatalogParams, course_catalog
from sim_bridge.world import Users, World
from sim_bridge.worldgen_v1 import catalog_of, orthogonal_offsets, users_of

# one child seed each; v2 never uses "catalog" (v3's public labels). Append, never reorder: spawning
# more children leaves the first ones as they were, so v2's worlds stay byte-identical.
_STREAMS = ("artists", "popularity", "embedding", "genre", "users", "band", "catalog")


@dataclass(frozen=True)
class WorldGenV2Config:
    """Parameters of a v2 world; ``configs/world_v2.yaml`` documents each one."""

    GENERATOR: ClassVar[str] = "v2"  # what ``generator`` must say (not a field: the cache digest ignores it)
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
    genre_noise: float = 0.35
    missing_genre_share: float = 0.4
    hub_m0: float = 0.33
    hub_sigma: float = 0.8
    cluster_scale: float = 1.5
    artist_scale: float = 3.25
    track_scale: float = 1.5
    band_scale: float = 0.0
    band_length: float = 0.5
    consume_bias_high: float = 10.0

    def __post_init__(self) -> None:
        if self.generator != self.GENERATOR:
            raise ValueError(f"generator must be {self.GENERATOR!r} for these parameters, got {self.generator!r}")
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
                     "track_scale", "band_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.band_length <= 0:
            raise ValueError(f"band_length must be > 0, got {self.band_length}")


@dataclass(frozen=True)
class WorldGenV3Config(CatalogParams, WorldGenV2Config):
    """Parameters of a v3 world: v2's (its hidden truth) and the public catalog's
    (:class:`sim_bridge.course_catalog.CatalogParams`); ``configs/world_v3.yaml`` documents them.
    v2's ``n_genres`` and ``missing_genre_share`` shape only v2's label: v3 ignores them."""

    GENERATOR: ClassVar[str] = "v3"
    generator: str = "v3"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_catalog_params()



class HiddenV2(NamedTuple):
    """A v2 world's hidden truth and the structure its public labels are made from."""

    track_artist: np.ndarray  # sorted artist code of each track
    artist_cluster: np.ndarray  # latent taste cluster of each artist
    pop: np.ndarray  # integer popularity (play count) of each track
    embeddings: np.ndarray
    users: Users
    rng: dict  # the streams by name (those of the labels not drawn from yet)


def hidden_v2(cfg: WorldGenV2Config) -> HiddenV2:
    """v2's hidden truth: each part from its own stream, so the labels never move it."""
    rng = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(len(_STREAMS)))))
    track_artist = artist_of_tracks(cfg, rng["artists"])
    shares = 1.0 / np.arange(1, cfg.n_clusters + 1) ** cfg.cluster_zipf
    artist_cluster = rng["artists"].choice(cfg.n_clusters, size=cfg.n_artists, p=shares / shares.sum())
    xi = rng["embedding"].normal(size=cfg.n_tracks)  # hub score of each track
    pop = _popularity_v2(cfg, rng["popularity"], track_artist, xi)
    embeddings = _embeddings_v2(cfg, rng["embedding"], artist_cluster[track_artist], track_artist, xi)
    embeddings += popularity_band(cfg, rng["band"], pop)
    users = _users_v2(cfg, rng["users"], artist_cluster[track_artist])
    return HiddenV2(track_artist, artist_cluster, pop, embeddings, users, rng)


def generate_world_v2(cfg: WorldGenV2Config) -> World:
    """Generate a v2 world; the same config (seed included) gives the same arrays."""
    h = hidden_v2(cfg)
    genre = _genre_labels(cfg, h.rng["genre"], h.artist_cluster, h.track_artist)
    return World(catalog_of(h.track_artist, genre, h.pop), h.embeddings, h.users)


def generate_world_v3(cfg: WorldGenV3Config) -> World:
    """Generate a v3 world: v2's hidden truth, the public catalog in the course's schema."""
    h = hidden_v2(cfg)
    catalog = course_catalog(cfg, cfg.genre_noise, h.rng["catalog"], h.track_artist, h.artist_cluster, h.pop)
    return World(catalog, h.embeddings, h.users)


def artist_of_tracks(cfg: WorldGenV2Config, rng: np.random.Generator) -> np.ndarray:
    """Artist of each track (tracks sorted by artist): singles, then 2 + multinomial sizes."""
    n_single = round(cfg.single_artist_share * cfg.n_artists)
    n_multi = cfg.n_artists - n_single
    weights = rng.lognormal(0.0, cfg.artist_size_sigma, size=n_multi)
    extra = rng.multinomial(cfg.n_tracks - n_single - 2 * n_multi, weights / weights.sum()) if n_multi else []
    sizes = np.concatenate([np.ones(n_single, dtype=np.int64), 2 + np.asarray(extra, dtype=np.int64)])
    sizes = sizes[rng.permutation(cfg.n_artists)]  # artist ids carry no size order
    return np.repeat(np.arange(cfg.n_artists), sizes)


def _popularity_v2(cfg, rng, track_artist, xi) -> np.ndarray:
    artist_pop = rng.lognormal(0.0, cfg.artist_pop_sigma, size=cfg.n_artists)
    track_pop = rng.lognormal(0.0, cfg.track_pop_sigma, size=cfg.n_tracks)
    scale = cfg.pop_scale * artist_pop[track_artist] * track_pop * np.exp(cfg.hub_pop_coupling * xi)
    return np.maximum(1, np.round(scale)).astype(np.int64)


def _embeddings_v2(cfg, rng, track_cluster, track_artist, xi) -> np.ndarray:
    u = rng.normal(size=cfg.dim)
    u /= np.linalg.norm(u)
    hub = cfg.hub_m0 * np.exp(cfg.hub_sigma * xi - cfg.hub_sigma**2 / 2)
    cluster = orthogonal_offsets(rng, cfg.n_clusters, u, cfg.cluster_scale)
    artist = orthogonal_offsets(rng, cfg.n_artists, u, cfg.artist_scale)
    track = orthogonal_offsets(rng, cfg.n_tracks, u, cfg.track_scale)
    emb = np.outer(hub, u) + cluster[track_cluster] + artist[track_artist] + track
    return emb.astype(np.float32)


def standard_log_pop(pop: np.ndarray) -> np.ndarray:
    """z: the log popularity standardised over the catalog."""
    log_pop = np.log(pop)
    return (log_pop - log_pop.mean()) / log_pop.std()


BAND_FEATURES = 512  # random Fourier features behind the popularity band


def popularity_band(cfg: WorldGenV2Config, rng: np.random.Generator, pop: np.ndarray) -> np.ndarray:
    """[n_tracks, dim] float32: a smooth random curve over the standardised log popularity ``z``,
    RMS length ``band_scale``, so that ⟨b(z), b(z')⟩ ≈ band_scale² · exp(−(z − z')² / (2 · band_length²)),
    less its mean over the catalog.

    Random Fourier features of a Gaussian kernel: tracks of similar popularity share a direction,
    as collaborative-filtering embeddings of play counts do, without making popular tracks liked
    by everyone. Centred, so two random tracks' bands are orthogonal on average (random listening
    barely moves). Zeros (and no draws) when ``band_scale`` is 0."""
    if cfg.band_scale == 0:
        return np.zeros((len(pop), cfg.dim), dtype=np.float32)
    z = standard_log_pop(pop)
    freq = rng.normal(0.0, 1.0 / cfg.band_length, size=BAND_FEATURES)
    phase = rng.uniform(0.0, 2 * np.pi, size=BAND_FEATURES)
    loadings = rng.normal(0.0, 1.0 / np.sqrt(cfg.dim), size=(BAND_FEATURES, cfg.dim))
    features = np.sqrt(2.0 / BAND_FEATURES) * np.cos(np.outer(z, freq) + phase)  # [n_tracks, M]
    band = cfg.band_scale * features @ loadings
    return (band - band.mean(axis=0)).astype(np.float32)


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


def _users_v2(cfg: WorldGenV2Config, rng: np.random.Generator, track_cluster: np.ndarray) -> Users:
    """Distinct interests by taste weight (not popularity); the rest as v1's users."""
    taste = np.exp(cfg.interest_sigma * rng.normal(size=cfg.n_tracks))
    interests = distinct_interests(rng, taste, track_cluster, cfg.interest_coherence, cfg.n_users, cfg.n_interests)
    return users_of(rng, interests, cfg.consume_bias_high)
