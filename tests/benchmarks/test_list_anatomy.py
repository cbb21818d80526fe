"""benchmarks/list_anatomy.py: the split by component, and the script end to end in its smoke mode."""
import dataclasses
import importlib.util

import numpy as np

from sim_bridge.defaults import CONFIG_DIR
from sim_bridge.worldgen import build_world, load_world_config
from tests.benchmarks.smoke import REPO, last_json, run

_spec = importlib.util.spec_from_file_location("list_anatomy", REPO / "benchmarks" / "list_anatomy.py")
list_anatomy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(list_anatomy)

SMALL = dataclasses.replace(load_world_config(CONFIG_DIR / "world_v2.yaml"), n_tracks=5_000, n_artists=1_150,
                            n_users=300, dim=32, band_scale=1.0)


def test_same_artist_lists_earn_the_artist_term_and_random_lists_do_not():
    world, parts = build_world(SMALL), list_anatomy.component_embeddings(SMALL)
    artist = world.catalog.artist_codes
    same = {u: np.flatnonzero(artist == artist[world.users.interests[u][0]]) for u in range(SMALL.n_users)}
    rng = np.random.default_rng(0)
    rand = {u: rng.integers(SMALL.n_tracks, size=100) for u in range(SMALL.n_users)}
    # times 3: ⟨a0, a0⟩ (χ² spread, SD 0.25 · scale² at dim 32) plus the other two interests' cross
    # terms (SD scale² / √dim each): per-user SD ≈ 0.36 · scale², SE over 300 users ≈ 0.02 · scale².
    # Interests of one cluster share an artist a few % of the time: up to ~0.05 · scale² more.
    first_only = list_anatomy.anatomy(world, parts, same)["artist"] * SMALL.n_interests
    assert abs(first_only - SMALL.artist_scale**2) < 0.15 * SMALL.artist_scale**2
    random_row = list_anatomy.anatomy(world, parts, rand)
    assert abs(random_row["artist"]) < 0.05 * SMALL.artist_scale**2
    assert random_row["distinct"] > 0.9 * SMALL.n_tracks * (1 - np.exp(-100 * SMALL.n_users / SMALL.n_tracks))


def test_list_anatomy_smoke_runs_end_to_end():
    row = last_json(run("list_anatomy.py", "--smoke"))
    assert row["variant"] == "dssm"
    assert 0 < row["exp_time"] < 1 and row["dz"] >= 0 and row["distinct"] >= 1
