"""User-steps per second of the vectorised simulator vs the per-session reference loop.

Runs random and sticky_artist on the default world (generated and cached on first use),
both implementations in the same process and the same run, so the ratio is meaningful on
a noisy machine. The last line printed is one JSON object of the figures.

    python benchmarks/bench_simulator.py [--sessions 50000] [--reference-sessions 300] [--smoke]

``--smoke``: the tiny world, ``benchmarks.bench_simulator`` of ``configs/smoke.yaml`` (500 sessions,
20 reference sessions) — seconds, for CI.
"""
from __future__ import annotations

import argparse
import json
import time

from sim_bridge.defaults import ensure_default_world, ensure_smoke_world
from sim_bridge.policies import Random, StickyArtist
from sim_bridge.reference import simulate_reference
from sim_bridge.simulator import SimConfig, Simulator
from sim_bridge.world import load_world

from search.config import parse_benchmark_args


def steps_per_second(run) -> tuple[float, int]:
    start = time.perf_counter()
    sessions = run()
    seconds = time.perf_counter() - start
    steps = int((sessions["tracks"] - 1).sum())
    return steps / seconds, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--reference-sessions", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=SimConfig().batch_size)
    parser.add_argument("--smoke", action="store_true", help="tiny world, configs/smoke.yaml's session counts")
    args = parse_benchmark_args(parser, "bench_simulator")
    world = load_world(ensure_smoke_world() if args.smoke else ensure_default_world())
    sim = Simulator(world, SimConfig(batch_size=args.batch_size))
    start = time.perf_counter()
    sim.starts  # computed once per world; reported, not counted per step
    starts_s = time.perf_counter() - start
    figures = {"starts_seconds": round(starts_s, 2)}
    for policy in (Random(world.catalog.n_tracks), StickyArtist(world.catalog)):
        sim.run(policy, min(2_000, args.sessions), seed=0)  # warm-up: fault in the slot arrays
        fast, n_fast = steps_per_second(lambda: sim.run(policy, args.sessions, seed=1).sessions)
        slow, n_slow = steps_per_second(lambda: simulate_reference(world, policy, args.reference_sessions, seed=1))
        print(f"{policy.name:>14}: vectorised {fast:>12,.0f} steps/s ({n_fast} steps)   "
              f"reference {slow:>9,.0f} steps/s ({n_slow} steps)   ratio ×{fast / slow:,.0f}")
        figures[policy.name] = {"vectorized_steps_per_s": round(fast), "reference_steps_per_s": round(slow)}
    pols = [figures["random"], figures["sticky_artist"]]
    figures["vectorized_steps_per_s"] = min(p["vectorized_steps_per_s"] for p in pols)
    figures["reference_steps_per_s"] = max(p["reference_steps_per_s"] for p in pols)
    figures["speedup"] = round(figures["vectorized_steps_per_s"] / figures["reference_steps_per_s"], 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
