"""World v2: each of the course world's known statistics, checked on generated files.

A world scaled down 10× (5,000 tracks, 1,150 artists, 1,000 users) keeps every ratio of the
course's (slots per track, tracks per artist), so shares, medians and percentiles carry over.
"""
import dataclasses
import filecmp

import numpy as np
import pytest

from sim_bridge.contract.files import ConfigError
from sim_bridge.defaults import CONFIG_DIR
from sim_bridge.world import load_world, save_world
from sim_bridge.worldgen import build_world, load_world_config
from sim_bridge.worldgen_v1 import WorldGenConfig
from sim_bridge.worldgen_v2 import WorldGenV2Config

V2 = load_world_config(CONFIG_DIR / "world_v2.yaml")
SMALL = dataclasses.replace(V2, n_tracks=5_000, n_artists=1_150, n_users=1_000, dim=32)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The scaled-down v2 world, read back from its files."""
    folder = tmp_path_factory.mktemp("v2")
    save_world(build_world(SMALL), folder)
    return load_world(folder)


def test_configs_name_their_generator():
    assert isinstance(V2, WorldGenV2Config)
    assert load_world_config(CONFIG_DIR / "world_v1.yaml") == WorldGenConfig()  # v1 as it always was


def test_unknown_generator_is_refused(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("generator: v9\n")
    with pytest.raises(ConfigError, match="generator: expected one of v1, v2, v3, got 'v9'"):
        load_world_config(path)


def test_v1_and_v2_never_share_a_cache_folder():
    from sim_bridge.defaults import _digest

    assert _digest(WorldGenConfig()) != _digest(V2)
    assert "generator" in dataclasses.asdict(WorldGenConfig())


def test_exactly_three_distinct_interests_per_user(small):
    it = small.users.interests
    assert it.shape == (SMALL.n_users, 3) and (small.users.n_interests == 3).all()
    srt = np.sort(it, axis=1)
    assert not (srt[:, 1:] == srt[:, :-1]).any()


def test_interests_spread_like_the_courses(small):
    counts = np.bincount(small.users.interests.ravel(), minlength=SMALL.n_tracks)
    # course: 21,021 distinct over 30,000 slots (0.70); uniform would give 0.75, ∝ pop 0.49
    assert 0.67 <= (counts > 0).sum() / counts.sum() <= 0.73
    assert counts.max() <= 8


def test_interests_are_not_drawn_by_popularity(small):
    counts = np.bincount(small.users.interests.ravel(), minlength=SMALL.n_tracks)
    pop = small.catalog.pop
    top = pop >= np.quantile(pop, 0.9)
    share = counts[top].sum() / counts.sum()  # ~0.10 if independent of pop; ~0.4 if ∝ pop
    se = np.sqrt(0.1 * 0.9 / counts.sum())
    assert abs(share - top.mean()) < 4 * se


def test_artist_sizes_like_the_courses(small):
    sizes = small.catalog.tracks["artist"].value_counts().to_numpy()
    assert len(sizes) == SMALL.n_artists
    assert abs((sizes == 1).mean() - 0.56) < 0.005  # course: 56% of artists
    assert abs((sizes == 1).sum() / SMALL.n_tracks - 0.13) < 0.01  # ≈13% of tracks
    assert np.median(sizes) == 1
    assert 9 <= np.percentile(sizes, 90) <= 13  # course ≈ 11
    assert sizes.max() <= 100  # course ≈ 80 at full size


def test_full_size_artist_statistics():
    from sim_bridge.worldgen_v2 import artist_of_tracks

    seed = np.random.SeedSequence(V2.seed).spawn(1)[0]
    sizes = np.bincount(artist_of_tracks(V2, np.random.default_rng(seed)))
    assert len(sizes) == 11_500 and sizes.sum() == 50_000
    assert 9 <= np.percentile(sizes, 90) <= 13 and 60 <= sizes.max() <= 100  # course: ≈11, ≈80


def test_genre_is_coarse_dominant_and_often_missing(small):
    genre = small.catalog.tracks["genre"]  # a tuple of ids per track, () where v2 has no label
    missing = (genre.map(len) == 0).mean()
    se = np.sqrt(SMALL.missing_genre_share * (1 - SMALL.missing_genre_share) / SMALL.n_tracks)
    assert abs(missing - SMALL.missing_genre_share) < 4 * se and missing > 0.25
    shares = genre[genre.map(len) > 0].value_counts(normalize=True).to_numpy()
    assert len(shares) <= SMALL.n_genres and shares[0] > 2 * shares[1]  # one genre dominant


def test_embedding_is_not_built_from_the_genre_label(tmp_path, small):
    other = dataclasses.replace(SMALL, n_genres=4, genre_noise=0.9, missing_genre_share=0.0)
    save_world(build_world(other), tmp_path)
    save_world(small, tmp_path / "base")
    assert filecmp.cmp(tmp_path / "tracks.npy", tmp_path / "base" / "tracks.npy", shallow=False)
    assert not filecmp.cmp(tmp_path / "tracks.json", tmp_path / "base" / "tracks.json", shallow=False)


def test_hub_spread_is_the_shared_components_log_normal_spread():
    # with the other components switched off, e = h·u and |e| = h = hub_m0 · lognormal(hub_sigma)
    only_hubs = dict(cluster_scale=0.0, artist_scale=0.0, track_scale=0.0, hub_sigma=0.8)
    norms = np.linalg.norm(build_world(dataclasses.replace(SMALL, **only_hubs)).embeddings, axis=1)
    se = 0.8 / np.sqrt(SMALL.n_tracks)  # SE of the mean and (about) of the SD of log h
    assert abs(np.log(norms).std() - 0.8) < 4 * se
    assert abs(np.log(norms).mean() - (np.log(SMALL.hub_m0) - 0.8**2 / 2)) < 4 * se
    flat = build_world(dataclasses.replace(SMALL, **{**only_hubs, "hub_sigma": 0.0})).embeddings
    assert np.allclose(np.linalg.norm(flat, axis=1), SMALL.hub_m0, rtol=1e-5)


def test_listener_parameters_as_the_courses(small):
    users = small.users
    assert 0 <= users.consume_bias.min() and users.consume_bias.max() <= 10
    sharp = users.consume_sharpness
    assert ((sharp >= 0.5) & (sharp <= 2)).all() and (sharp > 1).any() and (sharp < 1).any()


def test_same_config_gives_identical_files(tmp_path):
    save_world(build_world(SMALL), tmp_path / "a")
    save_world(build_world(SMALL), tmp_path / "b")
    for name in ("tracks.json", "tracks.npy", "users.json"):
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False)


def test_popularity_band_makes_tracks_of_similar_popularity_alike():
    # band only: ⟨b_i, b_j⟩ ≈ band² · k_c(z_i, z_j), the Gaussian kernel k(Δz) = exp(−Δz² / 2ℓ²) centred
    # over the catalog: k(z_i − z_j) − m_i − m_j + m̄ with m_i = mean_t k(z_i − z_t). One draw of the
    # curve has a relative error of about sqrt(1/dim + 2/features) ≈ 0.18 per pair; a bin's mean
    # averages the pairs, so 0.25 · band² bounds a bin's miss with room to spare.
    only_band = dict(hub_m0=0.0, cluster_scale=0.0, artist_scale=0.0, track_scale=0.0, band_scale=2.0,
                     band_length=0.3)
    world = build_world(dataclasses.replace(SMALL, **only_band))
    emb = world.embeddings.astype(np.float64)
    log_pop = np.log(world.catalog.pop)
    z = (log_pop - log_pop.mean()) / log_pop.std()
    kernel = lambda dz: np.exp(-dz**2 / (2 * 0.3**2))  # noqa: E731
    m = kernel(z[:, None] - z[None, ::5]).mean(axis=1)
    rng = np.random.default_rng(0)
    i, j = rng.integers(len(z), size=(2, 200_000))
    dot = (emb[i] * emb[j]).sum(axis=1)
    expected = 4.0 * (kernel(z[i] - z[j]) - m[i] - m[j] + m.mean())
    dz = np.abs(z[i] - z[j])
    for pairs in (dz < 0.05, (dz > 0.2) & (dz < 0.4), dz > 4 * 0.3):
        assert abs(dot[pairs].mean() - expected[pairs].mean()) < 0.25 * 4.0
    assert dot[dz < 0.05].mean() > dot[dz > 4 * 0.3].mean() + 2.0
    assert np.allclose(emb.mean(axis=0), 0.0, atol=1e-5)  # centred: random pairs' bands cancel on average
    off = build_world(dataclasses.replace(SMALL, **{**only_band, "band_scale": 0.0})).embeddings
    assert not off.any()
