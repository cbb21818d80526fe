"""Calibrate a generated world to the course's numbers: ``python -m search.calibrate``.

A Ray Tune search (Optuna, one trial at a time) over a world generator's free parameters
(``configs/calibrate.yaml``: the base world config, the space, the targets' settings). Each
trial generates the world, simulates its default logging run (the world config's ``logging:``
section, else ``configs/logging.yaml``), takes
its logged TopPop and measures

* the three baselines as the course did (``sim_bridge.abtest``, paired sessions):
  random 2.05, sticky_artist 2.99, toppop 2.12 mean time per session, each to ±3%;
* when every baseline is within ``gate_pct``: the seed table's rows (``variants``, by default
  the seminar DSSM and row 9), each trained on those logs, served indexed and A/B-tested against
  sticky_artist exactly as ``search.seed_table`` does, against the seed's published effect
  (``train_seeds``: each row trained once per seed, as ``search.seed_table --train-seed``, and the
  effects averaged — training noise alone moves a row, see docs/results.md);

Objective (minimised): the root mean square of the normalised misses — a baseline's miss in % over
3, a row's miss in points over its published CI's half-width — so a world inside every target
scores below 1. A trial stopped at the gate counts each row it skipped as a miss of ``GATED``.
Writes ``OUT/calibration.csv`` (one row per trial) and ``OUT/best_world.yaml`` (the best trial's
full world config). ``--smoke``: ``calibrate:`` of ``configs/smoke.yaml`` (a tiny world, short runs) —
seconds per trial, for CI.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim_bridge.contract.files import ConfigError, atomic_write_text, load_yaml, with_overrides
from sim_bridge.abtest import TARGETS, measure_baselines
from sim_bridge.worldgen import load_world_config

from search.config import load_smoke
from search.space import check_key, parse_space, to_optuna

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "configs" / "calibrate.yaml"
BASELINE_TOLERANCE_PCT = 3.0
GATED = 10.0  # normalised miss of a row a trial did not measure
LOGGING = "logging."  # space keys with this prefix set the logging run (logging.sessions), the rest the world


@dataclass
class CalibrateConfig:
    """``configs/calibrate.yaml``: every default here is the value that file gives (a test holds
    them equal); the space has none, a calibration config must say it."""

    space: dict[str, Any]
    world: str = "world_v2.yaml"  # relative to the calibrate config file
    variants: list[str] = field(default_factory=lambda: ["dssm", "l2_normalize", "dense_block_emb64"])
    num_samples: int = 12
    seed: int = 20260101  # the searcher's
    baseline_sessions: int = 20_000
    baseline_seed: int = 1
    ab_sessions: int = 8_000  # the seed table's
    ab_seed: int = 808_000  # the seed table's
    logging_sessions: int = 0  # > 0: every trial's logging run has this many sessions (wins over the space)
    logging_arms: list[str] = field(default_factory=list)  # empty: configs/logging.yaml's
    gate_pct: float = 6.0
    train_seeds: list[int] = field(default_factory=lambda: [0])  # each row trained once per seed, effects averaged


def distance(measured: dict[str, float], variants: list[str]) -> float:
    """RMS of the normalised misses (see the module doc); ``measured`` maps target → value."""
    from search.seed_table import SEED_PUBLISHED

    terms = [(measured[name] / TARGETS[name] - 1) * 100 / BASELINE_TOLERANCE_PCT for name in TARGETS]
    for name in variants:
        effect, lower, upper = SEED_PUBLISHED[name]
        got = measured.get(name)
        terms.append(GATED if got is None else (got - effect) / ((upper - lower) / 2))
    return math.sqrt(sum(t * t for t in terms) / len(terms))


def simulate_default_logs(world, logging, sessions: int, out: Path, arms: list[str] | None = None):
    """The world's logging run ``logging`` on ``world`` (``sessions`` > 0 / ``arms`` override it) → events."""
    from sim_bridge.defaults import simulate_logs_of
    from sim_bridge.contract.logs import read_logs

    cfg = logging
    if sessions:
        cfg = dataclasses.replace(cfg, sessions=sessions)
    if arms:
        cfg = dataclasses.replace(cfg, arms=list(arms))
    simulate_logs_of(world, cfg, out)
    return read_logs(out)


def evaluate_world(world_cfg, logging, settings: CalibrateConfig, smoke: bool = False) -> dict[str, float]:
    """Measure one world: baselines, then (past the gate) the seed table's rows; + ``distance``."""
    from sim_bridge.contract.recs import top_tracks_by_time
    from sim_bridge.worldgen import build_world

    from search import seed_table

    world = build_world(world_cfg)
    with tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        events = simulate_default_logs(world, logging, settings.logging_sessions, Path(tmp) / "logs.parquet",
                                       settings.logging_arms)
    world = dataclasses.replace(world, top_tracks=top_tracks_by_time(events))
    rows = measure_baselines(world, settings.baseline_sessions, settings.baseline_seed)
    measured = {name.removesuffix("_catalog"): row["time"] for name, row in rows.items()}
    out = {f"{name}_time": value for name, value in measured.items()}
    if all(abs(row["off_pct"]) <= settings.gate_pct for row in rows.values()):
        cache: dict = {}
        for name in settings.variants:
            index = list(seed_table.SEED_PUBLISHED).index(name)
            rows = [seed_table.run_variant(name, index, world, events, cache, settings.ab_sessions, settings.ab_seed,
                                           smoke, train_seed=seed).headline
                    for seed in settings.train_seeds]
            effect, lower, upper = (seed_table.pooled_effect([r["effect"] for r in rows]) if len(rows) > 1
                                    else (rows[0]["effect"], rows[0]["lower"], rows[0]["upper"]))
            measured[name] = float(effect)
            out.update({f"{name}_effect": effect, f"{name}_lower": lower, f"{name}_upper": upper})
    out["distance"] = distance(measured, settings.variants)
    return out


def split_point(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A sampled point → (world overrides, logging-run overrides without the ``logging.`` prefix)."""
    world = {k: v for k, v in config.items() if not k.startswith(LOGGING)}
    logging = {k.removeprefix(LOGGING): v for k, v in config.items() if k.startswith(LOGGING)}
    return world, logging


def _trial(config: dict, base, logging, settings: CalibrateConfig, smoke: bool) -> None:
    import torch
    from ray import tune

    torch.set_num_threads(1)  # the cores are shared: one trial, one thread
    world, logged = split_point(config)
    tune.report(evaluate_world(with_overrides(base, world), with_overrides(logging, logged), settings, smoke))


def load_settings(path: Path, smoke: bool) -> tuple[CalibrateConfig, Any, Any, dict]:
    """Settings, the base world config (smoke overrides applied), its logging run, the parsed space."""
    from sim_bridge.defaults import logging_config

    settings = load_yaml(path, CalibrateConfig)
    base = load_world_config(path.parent / settings.world)
    logging = logging_config(path.parent / settings.world)
    if smoke:
        s = load_smoke().calibrate
        settings = dataclasses.replace(settings, num_samples=s.num_samples, logging_sessions=s.logging_sessions,
                                       baseline_sessions=s.baseline_sessions, ab_sessions=s.ab_sessions,
                                       gate_pct=s.gate_pct)
        base = with_overrides(base, s.world)
    from search.seed_table import SEED_PUBLISHED

    seeds = settings.train_seeds
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: train_seeds: expected distinct training seeds >= 0, got {seeds}")
    unknown = [v for v in settings.variants if v not in SEED_PUBLISHED]
    if unknown:
        raise ConfigError(f"{path}: variants: unknown seed-table row(s) {', '.join(unknown)} "
                          f"(known: {', '.join(SEED_PUBLISHED)})")
    try:
        space = parse_space(settings.space)
        for key, param in space.items():  # a logging.* key is the logging run's, the rest the world's
            check_key(key.removeprefix(LOGGING), param, logging if key.startswith(LOGGING) else base, label=key)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return settings, base, logging, space


def run(args: argparse.Namespace, settings: CalibrateConfig, base, logging, space: dict) -> pd.DataFrame:
    """The Tune search over ``load_settings``' results → one row per trial, best first."""
    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    samples = args.num_samples or settings.num_samples
    searcher = ConcurrencyLimiter(OptunaSearch(space=to_optuna(space), metric="distance", mode="min",
                                               seed=settings.seed), max_concurrent=1)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=True)
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_trial, base=base, logging=logging, settings=settings,
                                                      smoke=args.smoke),
                                {"cpu": 1}),
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=samples),
            run_config=tune.RunConfig(storage_path=str(args.out.resolve() / "ray"), name="calibrate",
                                      verbose=1),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    frame = results.get_dataframe()
    keep = [c for c in frame.columns if c.startswith("config/") or c.endswith(("_time", "_effect", "_lower", "_upper"))]
    frame = frame[keep + ["distance"]].rename(columns=lambda c: c.removeprefix("config/"))
    return frame.sort_values("distance").reset_index(drop=True)


def best_world_yaml(frame: pd.DataFrame, base, logging, settings: CalibrateConfig) -> str:
    """The best trial's full world config, the logging run it was measured with as ``logging:``."""
    point = {k: _plain(frame.loc[0, k]) for k in frame.columns if k in dataclasses.asdict(base) or k.startswith(LOGGING)}
    world, logged = split_point(point)
    if settings.logging_sessions:
        logged["sessions"] = settings.logging_sessions
    body = {**dataclasses.asdict(with_overrides(base, world)),
            "logging": dataclasses.asdict(with_overrides(logging, logged))}
    return (f"# best of {len(frame)} calibration trials, distance {frame.loc[0, 'distance']:.3f}\n"
            + yaml.safe_dump(body, sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m search.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="calibration settings (default "
                                                                        "configs/calibrate.yaml)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--num-samples", type=int, default=0, help="trials (default: the config's)")
    p.add_argument("--smoke", action="store_true", help="tiny world, short runs: seconds per trial")
    p.add_argument("--force", action="store_true", help="overwrite outputs already in --out")
    args = p.parse_args(argv)
    outputs = [args.out / "calibration.csv", args.out / "best_world.yaml"]
    try:
        if any(o.exists() for o in outputs) and not args.force:
            raise ConfigError(f"{args.out} already holds calibration results: pass --force to overwrite")
        if args.num_samples < 0:
            raise ConfigError(f"--num-samples must be >= 0, got {args.num_samples}")
        settings, base, logging, space = load_settings(args.config, args.smoke)  # bad settings: before Ray
        args.out.mkdir(parents=True, exist_ok=True)
        frame = run(args, settings, base, logging, space)
    except ConfigError as exc:
        print(f"search.calibrate: {exc}", file=sys.stderr)
        return 2
    atomic_write_text(outputs[0], frame.to_csv(index=False))
    atomic_write_text(outputs[1], best_world_yaml(frame, base, logging, settings))
    print(frame.to_string(index=False), flush=True)
    print(f"results: {outputs[0]}, {outputs[1]}", flush=True)
    return 0


def _plain(value):
    """numpy scalars → Python numbers (for with_overrides' type checks and YAML)."""
    return value.item() if hasattr(value, "item") else value


if __name__ == "__main__":
    sys.exit(main())
