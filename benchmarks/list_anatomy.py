"""Where a DSSM's lists get their listening time: the hidden embedding, one component at a time.

    python benchmarks/list_anatomy.py [--variants dssm,l2_normalize,...] [--world-config FILE] [--smoke]

Generates the world (default: the built-in one) and its default logging run, trains seed-table
rows (``search.seed_table``'s configs) on those logs and, for
every user with a list and each of the user's interests, averages over the list's top 100:

* ``exp_time``: the listener's expected time of a first play, σ((⟨e_r, s⟩ − bias) · sharpness);
* ``inner``: ⟨e_r, s⟩ itself, and ``hub`` / ``cluster`` / ``artist`` / ``track`` / ``band``: its
  like-for-like terms, one per v2 component (each rebuilt from the world config with the others
  switched off: the components draw from fixed streams, so they add up to the embedding); the
  rest of ``inner`` is cross terms between components, ~0 on average;
* ``z_list`` / ``dz``: the list's standardised log popularity, and its distance to the interest's;
* ``distinct``: distinct tracks over all lists (a list collapsed onto a few tracks shows here).

It reads the simulator's hidden truth on purpose: it explains what a model exploits in a world,
which is what a world calibration has to reason about. v2 worlds only. Prints one JSON object per
variant. ``--smoke``: ``benchmarks.list_anatomy`` of ``configs/smoke.yaml`` (the world scaled down,
a short logging run, 1-epoch rows) — seconds, for CI (the numbers mean nothing).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.features import build_training_data  # noqa: E402
from sim_bridge.contract.files import ConfigError, with_overrides  # noqa: E402
from sim_bridge.defaults import logging_config, world_config_path  # noqa: E402
from sim_bridge.worldgen import build_world, load_world_config  # noqa: E402
from sim_bridge.worldgen_v2 import WorldGenV2Config, standard_log_pop  # noqa: E402

from search import seed_table  # noqa: E402
from search.calibrate import simulate_default_logs  # noqa: E402
from search.config import parse_benchmark_args  # noqa: E402
from search.trial import TrialInputs, TrialSetup, run_trial  # noqa: E402

COMPONENTS = {"hub": "hub_m0", "cluster": "cluster_scale", "artist": "artist_scale", "track": "track_scale",
              "band": "band_scale"}
LIST_LENGTH = 100


def component_embeddings(cfg: WorldGenV2Config) -> dict[str, np.ndarray]:
    """Each component of the v2 embedding alone (float64 [n_tracks, dim]); they sum to the embedding."""
    off = {key: 0.0 for key in COMPONENTS.values()}
    return {name: build_world(dataclasses.replace(cfg, **{**off, key: getattr(cfg, key)})).embeddings.astype(np.float64)
            for name, key in COMPONENTS.items()}


def _pop_z(pop: np.ndarray) -> np.ndarray:
    """Standardised popularity: of the log play counts (v1, v2 catalogs), or of the course's
    standardised pop as given (v3 catalogs, where most values are negative)."""
    return standard_log_pop(pop) if pop.min() > 0 else (pop - pop.mean()) / pop.std()


def anatomy(world, parts: dict[str, np.ndarray], lists: dict[int, np.ndarray]) -> dict[str, float]:
    """The averages of the module doc over every (user with a list, interest) pair."""
    users, emb = world.users, world.embeddings.astype(np.float64)
    z = _pop_z(world.catalog.pop)
    sums: dict[str, float] = {}
    pairs = 0
    for user, tracks in lists.items():
        tracks = np.asarray(tracks)[:LIST_LENGTH]
        for s in users.interests[user]:
            inner = emb[tracks] @ emb[s]
            x = (inner - users.consume_bias[user]) * users.consume_sharpness[user]
            row = {"exp_time": (1 / (1 + np.exp(-x))).mean(), "inner": inner.mean(), "z_list": z[tracks].mean(),
                   "dz": np.abs(z[tracks] - z[s]).mean()}
            row.update({name: (part[tracks] @ part[s]).mean() for name, part in parts.items()})
            for key, value in row.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            pairs += 1
    out = {key: round(value / pairs, 3) for key, value in sums.items()}
    out["distinct"] = int(len(np.unique(np.concatenate([np.asarray(t)[:LIST_LENGTH] for t in lists.values()]))))
    return out


def scaled(cfg: WorldGenV2Config, scale: float) -> WorldGenV2Config:
    """``cfg`` with tracks, artists and users times ``scale`` (ratios kept)."""
    if scale == 1.0:
        return cfg
    return dataclasses.replace(cfg, n_tracks=round(cfg.n_tracks * scale), n_artists=round(cfg.n_artists * scale),
                               n_users=round(cfg.n_users * scale))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="dssm,l2_normalize,layernorm,dense_block_emb64")
    p.add_argument("--world-config", type=Path, default=None, help="a v2 world config (default: the built-in world)")
    p.add_argument("--scale", type=float, default=1.0, help="tracks, artists and users times this")
    p.add_argument("--logging-sessions", type=int, default=0, help="0: the world's logging run's")
    p.add_argument("--max-epochs", type=int, default=0, help="0: each variant's own")
    p.add_argument("--smoke", action="store_true")
    args = parse_benchmark_args(p, "list_anatomy", argv)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in seed_table.SEED_PUBLISHED]
    if unknown:
        p.error(f"--variants: unknown seed-table row(s) {', '.join(unknown)}")
    path = args.world_config or world_config_path()
    try:
        cfg = load_world_config(path)
    except (ConfigError, ValueError) as exc:
        p.error(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
    if not isinstance(cfg, WorldGenV2Config):
        p.error(f"{path}: list_anatomy needs a v2 world (generator: v2)")
    cfg = scaled(cfg, args.scale)
    world = build_world(cfg)
    with tempfile.TemporaryDirectory(prefix="anatomy-") as tmp:
        events = simulate_default_logs(world, logging_config(path), args.logging_sessions, Path(tmp) / "logs.parquet")
    parts = component_embeddings(cfg)
    for name in variants:
        run_cfg = seed_table.variant_config(name, False)
        if args.max_epochs:
            run_cfg = with_overrides(run_cfg, {"train.max_epochs": args.max_epochs})
        data = build_training_data(events, world.catalog, run_cfg.features)
        out = run_trial(run_cfg, TrialInputs(world, data, None, None), TrialSetup())
        print(json.dumps({"variant": name, **anatomy(world, parts, out.lists.user)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
