"""What the seed's data volume costs: the default logs beside the seed-scale logs, same world.

    python benchmarks/bench_data_scale.py [--smoke] [--threads 1] [--epochs 2] [--no-trial]

For each logging config (the world's default, ``configs/logging_seed_scale.yaml``), in a fresh
process of its own (so each peak memory is its own):

* the logging run: seconds to simulate it, events, users, positives (time > 0.8), tracks with
  >= 5 positives — the seed's HW2 data: 3,329,514 events, 10,000 users, 491,787 positives,
  32,158 tracks, 3,933,430 training triplets;
* the training data of ``configs/train.yaml`` (the seed's features): seconds to build it, its
  triplets, and the process's peak resident memory after the build;
* seconds per epoch of the seed's best DSSM (``--epochs`` epochs, ``--threads`` threads);
* one default search trial (``configs/search.yaml``: rungs, serving chosen inside the trial, the
  paired A/B), its wall seconds and paired lift (``--no-trial`` skips it).

Then the ratios seed-scale / default. Last printed line: one JSON object with the figures.
``--smoke``: the tiny world and two small logging runs (seconds; the figures mean nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from search.config import parse_benchmark_args  # noqa: E402

SEED_SCALE = REPO / "configs" / "logging_seed_scale.yaml"
SMOKE_SCALES = {"default": (2_000, "smoke-logging"), "seed_scale": (8_000, "smoke-seed-scale")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="the tiny world and two small logging runs")
    p.add_argument("--threads", type=int, default=1, help="torch threads (a trial holds one CPU)")
    p.add_argument("--epochs", type=int, default=2, help="epochs timed per scale")
    p.add_argument("--no-trial", dest="trial", action="store_false", help="skip the default trial")
    p.add_argument("--scale", choices=["default", "seed_scale"], help=argparse.SUPPRESS)  # the child's
    args = parse_benchmark_args(p, "bench_data_scale", argv)
    if args.scale:
        print(json.dumps(measure(args)))
        return 0
    figures = {name: _child(name, args) for name in ("default", "seed_scale")}
    _print_table(figures)
    ratios = {key: figures["seed_scale"][key] / figures["default"][key]
              for key in ("events", "positives", "triplets", "build_s", "peak_rss_gb", "s_per_epoch", "trial_s")
              if figures["default"].get(key)}
    print("ratio seed_scale / default: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    print(json.dumps({**figures, "ratios": ratios}))
    return 0


def _child(scale: str, args) -> dict:
    cmd = [sys.executable, __file__, "--scale", scale, "--threads", str(args.threads), "--epochs", str(args.epochs)]
    cmd += ["--smoke"] * args.smoke + ["--no-trial"] * (not args.trial)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ran = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if ran.returncode:
        sys.exit(f"{scale}: {ran.stdout[-2000:]}{ran.stderr[-2000:]}")
    lines = ran.stdout.strip().splitlines()
    print(*[line for line in lines if line.startswith(f"{scale}: ")], sep="\n", flush=True)  # its summary line
    return json.loads(lines[-1])


def measure(args) -> dict:
    """One scale's figures, in this process."""
    from model.config import load_experiment_config
    from model.features import build_training_data
    from sim_bridge import defaults
    from sim_bridge.contract.files import load_yaml, with_overrides
    from sim_bridge.contract.logs import read_logs
    from sim_bridge.world import load_world

    world_dir = defaults.ensure_smoke_world() if args.smoke else defaults.ensure_default_world()
    config = _logging_config(args, defaults, load_yaml)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        defaults.simulate_logs(world_dir, config, Path(tmp) / "logs.parquet")
        simulate_s = time.perf_counter() - t0
        events = read_logs(Path(tmp) / "logs.parquet")
    world = load_world(world_dir)
    cfg = with_overrides(load_experiment_config(REPO / "configs" / "train.yaml"),
                         {"train.num_threads": args.threads, "train.max_epochs": args.epochs})
    t0 = time.perf_counter()
    data = build_training_data(events, world.catalog, cfg.features)
    build_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB → GB
    positives = events[events["time"] > cfg.features.positive_threshold]
    per_track = positives["track"].value_counts()
    out = {"scale": args.scale, "sessions": config.sessions, "simulate_s": simulate_s, "events": len(events),
           "users": int(events["user"].nunique()), "positives": len(positives),
           "tracks_5": int((per_track >= 5).sum()), "triplets": len(data.train) + len(data.val) + len(data.test),
           "train_triplets": len(data.train), "build_s": build_s, "peak_rss_gb": peak,
           "s_per_epoch": _seconds_per_epoch(cfg, data)}
    if args.trial:
        out.update(_one_trial(args, world, events))
    print(f"{args.scale}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in out.items()))
    return out


def _logging_config(args, defaults, load_yaml):
    if args.smoke:
        sessions, experiment = SMOKE_SCALES[args.scale]
        return defaults.LoggingConfig(experiment=experiment, sessions=sessions, seed=5)
    if args.scale == "seed_scale":
        return load_yaml(SEED_SCALE, defaults.LoggingConfig)
    return defaults.logging_config(defaults.world_config_path())


def _seconds_per_epoch(cfg, data) -> float:
    from model.train import train

    result = train(cfg, data, device="cpu")
    return sum(row["seconds"] for row in result.history) / len(result.history)


def _one_trial(args, world, events) -> dict:
    """The search's default trial (its base config and options), without Ray."""
    from search.config import search_defaults
    from search.trial import TrialSetup, prepare, run_trial

    scfg, base = search_defaults(args.smoke, args.threads)
    setup = TrialSetup(scfg.eval, scfg.objective, rungs=scfg.rungs, serving_search=scfg.serving_search)
    inputs = prepare(world, events, setup, None)
    t0 = time.perf_counter()
    trial = run_trial(base, inputs, setup)
    m = trial.metrics
    return {"trial_s": time.perf_counter() - t0, "trial_epochs": int(m["epoch"]), "trial_items": trial.data.n_items,
            "trial_lift": m["lift_vs_sticky"], "trial_lift_lower": m["lift_lower"], "trial_lift_upper": m["lift_upper"]}


def _print_table(figures: dict) -> None:
    keys = [k for k in figures["default"] if k != "scale"]
    print(f"\n{'':<18}{'default':>14}{'seed_scale':>14}")
    for key in keys:
        row = [figures[s].get(key) for s in ("default", "seed_scale")]
        print(f"{key:<18}" + "".join(f"{v:>14.4g}" if isinstance(v, float) else f"{v!s:>14}" for v in row))


if __name__ == "__main__":
    sys.exit(main())
