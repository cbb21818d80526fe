"""Calibration check of the default world: the course's baselines vs its published numbers.

Runs random, sticky_artist and toppop on the default world (generated and cached on first
use) and measures mean time and tracks per session with the course's A/B method (user-level
means ± standard error). Targets: the course's table (docs/seed.md), each within ±3%.

    python benchmarks/calibrate_world.py [--sessions 20000] [--seed 1] [--world-config configs/world_v1.yaml] [--smoke]

``--smoke``: the tiny world, ``benchmarks.calibrate_world`` of ``configs/smoke.yaml`` (500 sessions) —
seconds, for CI (its figures are not a calibration).
"""
from __future__ import annotations

import argparse
import json

from sim_bridge.abtest import TARGETS, measure_baselines
from sim_bridge.defaults import ensure_default_world, ensure_smoke_world, use_world_config
from sim_bridge.world import load_world

from search.config import parse_benchmark_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--world-config", default=None, help="world config (default configs/world.yaml)")
    parser.add_argument("--smoke", action="store_true", help="tiny world, configs/smoke.yaml's sessions")
    args = parse_benchmark_args(parser, "calibrate_world")
    use_world_config(args.world_config)
    world = load_world(ensure_smoke_world() if args.smoke else ensure_default_world())
    rows = measure_baselines(world, args.sessions, args.seed)
    print("| policy | mean_time_per_session | target | off | mean_tracks_per_session |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['time']:.3f} ± {row['time_se']:.3f} | {TARGETS[name.removesuffix('_catalog')]:.2f} | "
              f"{row['off_pct']:+.2f}% | {row['tracks']:.3f} ± {row['tracks_se']:.3f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
