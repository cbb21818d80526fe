"""World v3: v2's hidden truth, and a public catalog with the course's statistics, checked on
generated files.

The files are a world scaled down 10× as test_worldgen.py's (5,000 tracks, 1,150 artists). Genre
labels are drawn per artist, so a share of tracks varies like a sum over artists: its standard
error is at most sqrt(p(1 − p) · Σ size²) / N (every track of an artist alike), the bound used
below (4 of them). Most shares are met by quotas and come out far closer. Numbers quoted are the
course's, measured on a 1,425-track sample of its 50,000.
"""
import dataclasses
import filecmp
import json
import re

import numpy as np
import pandas as pd
import pytest

from sim_bridge.contract.files import ConfigError
from sim_bridge.defaults import CONFIG_DIR, _digest
from sim_bridge.world import load_world, save_world
from sim_bridge.worldgen import build_world, load_world_config
from sim_bridge.worldgen_v2 import WorldGenV2Config, WorldGenV3Config

V3 = load_world_config(CONFIG_DIR / "world_v3.yaml")
V2 = load_world_config(CONFIG_DIR / "world_v2.yaml")
SCALE = dict(n_tracks=5_000, n_artists=1_150, n_users=1_000, dim=32)
SMALL = dataclasses.replace(V3, **SCALE)
SMALL_V2 = dataclasses.replace(V2, **SCALE)
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The scaled-down v3 world and the v2 world of the same parameters, as files."""
    root = tmp_path_factory.mktemp("v3")
    save_world(build_world(SMALL), root / "v3")
    save_world(build_world(SMALL_V2), root / "v2")
    return root


@pytest.fixture(scope="module")
def catalog(folders):
    return load_world(folders / "v3").catalog


def _tolerance(catalog, p: float) -> float:
    sizes = catalog.tracks["artist"].value_counts().to_numpy()
    return 4 * np.sqrt(p * (1 - p) * (sizes**2).sum()) / catalog.n_tracks


def test_configs():
    assert isinstance(V3, WorldGenV3Config) and V3.generator == "v3"
    # the built-in world (v4) is v3 with popularity leaning further towards hubs, nothing else
    assert load_world_config(CONFIG_DIR / "world.yaml") == dataclasses.replace(V3, hub_pop_coupling=0.75)
    assert {f.name for f in dataclasses.fields(WorldGenV2Config)} < {f.name for f in dataclasses.fields(V3)}
    v2_part = {f.name: getattr(V3, f.name) for f in dataclasses.fields(WorldGenV2Config) if f.name != "generator"}
    assert WorldGenV2Config(**v2_part) == V2  # v3 extends v2 without changing a value
    assert _digest(V3) != _digest(V2)


def test_inconsistent_catalog_parameters_are_refused(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(f"extends: {CONFIG_DIR / 'world_v3.yaml'}\npop_knots: [0.5, -0.63, 0.32, 2.37, 0.1, 0.2]\n")
    with pytest.raises(ConfigError, match="must not decrease"):
        load_world_config(path)
    path.write_text(f"extends: {CONFIG_DIR / 'world_v3.yaml'}\ngenre_two_share: 0.6\n")
    with pytest.raises(ConfigError, match="must be <= 1"):
        load_world_config(path)


def test_hidden_truth_is_v2s_byte_for_byte(folders, catalog):
    for name in ("tracks.npy", "users.json"):
        assert filecmp.cmp(folders / "v3" / name, folders / "v2" / name, shallow=False)
    v2 = load_world(folders / "v2").catalog
    same_artist = pd.factorize(v2.tracks["artist"])[0]
    assert np.array_equal(pd.factorize(catalog.tracks["artist"])[0], same_artist)


def test_pop_keeps_the_order_of_v2s_counts(folders, catalog):
    counts = load_world(folders / "v2").catalog.pop
    pop = catalog.pop
    order = np.lexsort((pop, counts))  # by count, then by pop
    assert (np.diff(pop[order]) >= 0).all()  # never lower for a higher count
    assert np.array_equal(counts[order][1:] == counts[order][:-1], pop[order][1:] == pop[order][:-1])  # ties = ties
    top = lambda p: np.lexsort((np.arange(len(p)), -p))[:100]  # noqa: E731  toppop_catalog's order
    assert np.array_equal(top(pop), top(counts))


def test_pop_is_the_courses_distribution(catalog):
    pop = catalog.pop
    p10, p50, p90, p99 = np.quantile(pop, [0.1, 0.5, 0.9, 0.99])
    assert pop.min() == pytest.approx(-1.40) and pop.max() == pytest.approx(4.32)
    # a quantile is off by about its knot's slope · SE of the normal score; ±0.03 is several of them
    assert abs(p10 + 1.06) < 0.03 and abs(p50 + 0.63) < 0.03 and abs(p90 - 0.32) < 0.03
    assert abs(p99 - 2.37) < 0.1
    assert abs(pop.mean() + 0.45) < 0.02 and abs(pop.std() - 0.70) < 0.02  # course: -0.45, 0.70


def test_genre_lists_have_the_courses_shares(catalog):
    genres = catalog.genres
    n = len(genres)
    lengths = np.array([len(g) for g in genres])
    shares = {
        "one id": ((lengths == 1).mean(), 0.87),
        "two ids": ((lengths == 2).mean(), 0.116),
        "three or more": ((lengths >= 3).mean(), 0.013),
        "[1] alone": (np.mean([g == (1,) for g in genres]), 0.449),
        "id 1": (np.mean([1 in g for g in genres]), 0.513),
        "id 10": (np.mean([10 in g for g in genres]), 0.135),
        "id 6": (np.mean([6 in g for g in genres]), 0.081),
        "id 149": (np.mean([149 in g for g in genres]), 0.065),
        "id 2": (np.mean([2 in g for g in genres]), 0.056),
    }
    for what, (got, course) in shares.items():
        assert abs(got - course) < _tolerance(catalog, course), what
    assert lengths.min() >= 1  # never missing
    counts = pd.Series([i for g in genres for i in g]).value_counts()
    assert list(counts.index[:5]) == [1, 10, 6, 149, 2]
    assert counts.index.max() <= 154 and counts.index.min() >= 1
    assert 60 <= len(counts) <= 91  # course: 91 distinct ids over 50,000 tracks
    assert all(list(g) == sorted(set(g)) for g in genres)


def test_full_size_genre_and_duration_statistics():
    # the catalog alone at the default world's size: shares met to a fraction of a point
    from sim_bridge.course_catalog import course_catalog
    from sim_bridge.worldgen_v2 import artist_of_tracks

    seeds = np.random.SeedSequence(V3.seed).spawn(7)
    artists = np.random.default_rng(seeds[0])
    track_artist = artist_of_tracks(V3, artists)
    cluster = artists.choice(V3.n_clusters, size=V3.n_artists, p=np.r_[1 / np.arange(1, 16)] / (1 / np.arange(1, 16)).sum())
    counts = np.random.default_rng(1).integers(1, 10_000, size=V3.n_tracks)
    cat = course_catalog(V3, V3.genre_noise, np.random.default_rng(seeds[6]), track_artist, cluster, counts)
    genres = cat.genres
    for share, course in ((np.mean([g == (1,) for g in genres]), 0.449), (np.mean([1 in g for g in genres]), 0.513),
                          (np.mean([len(g) == 2 for g in genres]), 0.116), (np.mean([10 in g for g in genres]), 0.135),
                          (np.mean([6 in g for g in genres]), 0.081), (np.mean([149 in g for g in genres]), 0.065)):
        assert abs(share - course) < 0.003
    assert len({i for g in genres for i in g}) >= 88 and max(i for g in genres for i in g) == 154
    duration = cat.tracks["duration"].to_numpy(dtype=float)
    assert abs(np.median(duration) - 205) <= 3 and duration.min() >= 48 and duration.max() <= 836


def test_artists_mostly_keep_one_genre_list(catalog):
    # an artist's tracks share its list but for albums (or whole artists) labelled [1] alone
    frame = pd.DataFrame({"artist": catalog.tracks["artist"], "genre": [str(g) for g in catalog.genres]})
    labelled = frame[frame["genre"] != "(1,)"]
    lists = labelled.groupby("artist")["genre"].nunique()
    assert (lists == 1).all()


def test_duration_albums_and_names(catalog):
    tracks = catalog.tracks
    duration = tracks["duration"].to_numpy(dtype=float)
    assert abs(np.median(duration) - 205) <= 0.03 * 205  # course: median 205
    assert duration.min() >= 48 and duration.max() <= 836  # course: 48–836
    assert 100 <= np.percentile(duration, 5) and np.percentile(duration, 95) <= 420
    artists = tracks["artist"].unique()
    assert len(artists) == SMALL.n_artists  # one name per artist, unique
    cyrillic = np.mean([bool(CYRILLIC.search(a)) for a in artists])
    assert 0.85 <= cyrillic <= 0.95  # latin_name_share 0.1
    per_artist = tracks.groupby("artist")["album"].nunique()
    assert per_artist.min() >= 1 and per_artist.median() <= 2 and per_artist.max() < tracks["artist"].value_counts().max()
    assert (tracks["title"].str.len() > 0).all() and (tracks["album"].str.len() > 0).all()
    shared = tracks.groupby("album")["artist"].nunique() > 1  # titles are made up per album: rarely one repeats
    assert shared.mean() < 0.05


def test_raw_lines_are_the_courses_schema(folders):
    lines = (folders / "v3" / "tracks.json").read_text(encoding="utf-8").splitlines()
    assert len(lines) == SMALL.n_tracks and CYRILLIC.search(lines[0])  # written as UTF-8, not \u escapes
    for line in lines:
        obj = json.loads(line)
        assert list(obj) == ["artist", "album", "title", "genre", "pop", "duration", "track"]
        assert all(isinstance(obj[k], str) and obj[k] for k in ("artist", "album", "title"))
        assert isinstance(obj["genre"], list) and obj["genre"] and all(type(g) is int for g in obj["genre"])
        assert type(obj["pop"]) is float and type(obj["duration"]) is int and type(obj["track"]) is int


def test_same_seed_same_files_another_seed_other_files(tmp_path, folders):
    save_world(build_world(SMALL), tmp_path / "a")
    save_world(build_world(dataclasses.replace(SMALL, seed=8)), tmp_path / "b")
    for name in ("tracks.json", "tracks.npy", "users.json"):
        assert filecmp.cmp(tmp_path / "a" / name, folders / "v3" / name, shallow=False)
        assert not filecmp.cmp(tmp_path / "b" / name, folders / "v3" / name, shallow=False)


def test_catalog_is_fast():
    import time

    from sim_bridge.course_catalog import course_catalog

    track_artist = np.sort(np.random.default_rng(0).integers(0, 11_500, size=50_000))
    track_artist = np.unique(track_artist, return_inverse=True)[1]
    cluster = np.random.default_rng(1).integers(0, 15, size=track_artist.max() + 1)
    start = time.perf_counter()
    course_catalog(V3, 0.35, np.random.default_rng(2), track_artist, cluster, np.arange(50_000))
    assert time.perf_counter() - start < 5.0  # ≈0.5 s alone; the machine is shared


def test_default_logging_run_logs_the_same_events_as_on_v2(tmp_path, folders):
    # catalog pop keeps v2's order (toppop_catalog), the artists and embeddings are v2's
    from sim_bridge.defaults import logging_config, simulate_logs_of

    config = dataclasses.replace(logging_config(CONFIG_DIR / "world_v3.yaml"), sessions=600)
    for name in ("v2", "v3"):
        simulate_logs_of(load_world(folders / name), config, tmp_path / f"{name}.parquet")
    assert pd.read_parquet(tmp_path / "v2.parquet").equals(pd.read_parquet(tmp_path / "v3.parquet"))
