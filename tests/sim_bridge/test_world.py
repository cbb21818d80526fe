"""World files: course format round trip, byte-identical generation, clear errors."""
import filecmp
import json

import numpy as np
import pytest

from sim_bridge.contract.files import load_yaml
from sim_bridge.defaults import SMOKE_WORLD_CONFIG
from sim_bridge.world import WorldFormatError, load_world, save_world
from sim_bridge.worldgen_v1 import WorldGenConfig, generate_world

FILES = ("tracks.json", "tracks.npy", "users.json")


def smoke_config(**overrides):
    cfg = load_yaml(SMOKE_WORLD_CONFIG, WorldGenConfig)
    return WorldGenConfig(**{**cfg.__dict__, **overrides})


def test_round_trip(tmp_path, smoke_world):
    save_world(smoke_world, tmp_path)
    loaded = load_world(tmp_path)
    np.testing.assert_array_equal(loaded.embeddings, smoke_world.embeddings)
    assert loaded.catalog.tracks.equals(smoke_world.catalog.tracks)
    for field in ("user", "interests", "consume_bias", "consume_sharpness", "session_budget"):
        np.testing.assert_array_equal(getattr(loaded.users, field), getattr(smoke_world.users, field))


def test_same_seed_gives_byte_identical_files(tmp_path):
    save_world(generate_world(smoke_config()), tmp_path / "a")
    save_world(generate_world(smoke_config()), tmp_path / "b")
    save_world(generate_world(smoke_config(seed=12)), tmp_path / "c")
    assert all(filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False) for f in FILES)
    assert not filecmp.cmp(tmp_path / "a" / "tracks.npy", tmp_path / "c" / "tracks.npy", shallow=False)


def test_generator_matches_the_course_world_shape():
    cfg = smoke_config()
    world = generate_world(cfg)
    users = world.users
    assert world.embeddings.shape == (cfg.n_tracks, cfg.dim) and world.embeddings.dtype == np.float32
    assert users.interests.shape == (cfg.n_users, 3)
    assert 0 <= users.consume_bias.min() and users.consume_bias.max() <= 10
    sharp = users.consume_sharpness
    assert ((sharp >= 0.5) & (sharp <= 2)).all()
    assert (sharp > 1).any() and (sharp < 1).any()  # U(1, 2) ** ±1
    assert world.catalog.tracks["artist"].nunique() == cfg.n_artists


def test_popular_tracks_are_more_often_interests():
    world = generate_world(smoke_config())
    counts = np.bincount(world.users.interests.ravel(), minlength=world.catalog.n_tracks)
    pop = world.catalog.pop
    top = pop >= np.quantile(pop, 0.9)
    # interests ∝ popularity: the top decile's share of interests matches its share of popularity
    share, expected = counts[top].sum() / counts.sum(), pop[top].sum() / pop.sum()
    se = np.sqrt(expected * (1 - expected) / counts.sum())
    assert abs(share - expected) < 4 * se


def test_missing_file_is_named(tmp_path, smoke_world):
    save_world(smoke_world, tmp_path)
    (tmp_path / "tracks.npy").unlink()
    with pytest.raises(WorldFormatError, match="missing tracks.npy"):
        load_world(tmp_path)


def test_malformed_user_line_names_file_line_and_field(tmp_path, smoke_world):
    save_world(smoke_world, tmp_path)
    lines = (tmp_path / "users.json").read_text().splitlines()
    bad = json.loads(lines[2])
    bad["consume_bias"] = "high"
    lines[2] = json.dumps(bad)
    (tmp_path / "users.json").write_text("\n".join(lines) + "\n")
    with pytest.raises(WorldFormatError, match=r"users.json:3: field 'consume_bias'"):
        load_world(tmp_path)


def test_optional_user_fields_take_the_course_defaults(tmp_path, smoke_world):
    save_world(smoke_world, tmp_path)
    lines = (tmp_path / "users.json").read_text().splitlines()
    keep = ("user", "interests", "consume_bias", "consume_sharpness")
    minimal = [json.dumps({k: v for k, v in json.loads(line).items() if k in keep}) for line in lines]
    (tmp_path / "users.json").write_text("\n".join(minimal) + "\n")
    users = load_world(tmp_path).users
    assert (users.session_budget == 5).all() and (users.interest_neighbours == 10).all()
    assert (users.artist_discount_gamma == 0.8).all()
