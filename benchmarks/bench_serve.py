"""Requests per second and latency of the recommender service over HTTP, beside the in-process simulator.

Starts the service (``search.serve``: Ray Serve on 127.0.0.1) serving sticky_artist (and any
``--treatment`` arms, as an A/B), then drives it with the listener model (``sim_bridge.drive``) for 1 and 2 replicas ×
a few concurrency levels. Each run reports requests/s, the client's round-trip latency p50/p99,
lost log lines (requests answered − events logged: must be 0) and the time spent in the handler
(botify's ``latency`` field; the rest of a round trip is HTTP and Ray Serve). In the same process
and run, the in-process simulator serves the same policies; its steps/s over the service's
requests/s is the price of HTTP. The last line printed is one JSON object of the figures.

    python benchmarks/bench_serve.py [--smoke] [--treatment runs/NAME] [--sessions 1000]
"""
from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
from ray import serve

from search.config import parse_benchmark_args
from search.serve import count_events, deploy, start
from search.service import ServiceConfig, build_policy, resolve_arm
from sim_bridge.contract import columns as C
from sim_bridge.defaults import ensure_default_world, ensure_smoke_world
from sim_bridge.drive import DriveConfig, drive
from sim_bridge.abtest import simulate_experiment
from sim_bridge.contract.logs import read_logs
from sim_bridge.simulator import Simulator
from sim_bridge.world import load_world

EXPERIMENT = "bench-serve"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def simulator_steps_per_s(world, arm_specs: list[str], sessions: int) -> float:
    """The same arms, in process (the A/B the service runs, without HTTP)."""
    policies = [build_policy(resolve_arm(a), world.catalog) for a in arm_specs]
    sim = Simulator(world)
    simulate_experiment(sim, policies, EXPERIMENT, 500, seed=0)  # warm-up: start table, slot arrays
    start_s = time.perf_counter()
    result = simulate_experiment(sim, policies, EXPERIMENT, sessions, seed=1)
    return float((result.sessions["tracks"] - 1).sum()) / (time.perf_counter() - start_s)


def http_runs(world, world_dir: Path, arm_specs: list[str], args, log_root: Path) -> list[dict]:
    """Deploy with each replica count; drive each concurrency level; one figure dict per run."""
    arms = tuple(resolve_arm(a) for a in arm_specs)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    runs = []
    for replicas in (1, 2):
        config = ServiceConfig(arms, str(world_dir), str(log_root / f"replicas-{replicas}"), EXPERIMENT)
        if replicas == 1:
            start(config, port=port, replicas=1, cpus_per_replica=0.5)
        else:
            deploy(config, replicas=replicas, cpus_per_replica=0.5)
        log_dir = Path(config.log_dir)
        for k, concurrency in enumerate(args.concurrency):
            drive(world, DriveConfig(url, max(concurrency, 10), concurrency, seed=99))  # warm-up
            before, since_ms = count_events(log_dir), time.time() * 1000
            res = drive(world, DriveConfig(url, args.sessions, concurrency, seed=100 + k))
            lost = res.requests - (count_events(log_dir) - before)
            events = read_logs(log_dir)
            handler = events.loc[events[C.TIMESTAMP] >= since_ms, C.LATENCY].to_numpy() * 1000
            runs.append({"replicas": replicas, "concurrency": concurrency, "requests": res.requests,
                         "requests_per_s": round(res.requests_per_s, 1), "p50_ms": round(res.percentile_ms(50), 2),
                         "p99_ms": round(res.percentile_ms(99), 2), "lost_lines": lost,
                         "handler_p50_ms": round(float(np.percentile(handler, 50)), 3),
                         "handler_p99_ms": round(float(np.percentile(handler, 99)), 3)})
            print(f"replicas {replicas}  concurrency {concurrency:>3}: {res.requests_per_s:>7.0f} requests/s   "
                  f"p50 {res.percentile_ms(50):6.1f} ms   p99 {res.percentile_ms(99):6.1f} ms   "
                  f"(in the handler: p50 {runs[-1]['handler_p50_ms']:.2f} ms, p99 {runs[-1]['handler_p99_ms']:.2f} ms; "
                  f"{res.requests} requests, lost log lines: {lost})", flush=True)
    serve.delete("botify")
    ray.shutdown()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny world, few sessions (seconds, once Ray is up)")
    parser.add_argument("--treatment", action="append", default=[], help="also serve this arm (folder or policy)")
    parser.add_argument("--sessions", type=int, default=1000, help="sessions per run over HTTP")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="clients at once, per run")
    parser.add_argument("--simulator-sessions", type=int, default=20_000, help="sessions of the in-process baseline")
    args = parse_benchmark_args(parser, "bench_serve")
    world_dir = Path(ensure_smoke_world() if args.smoke else ensure_default_world())
    world = load_world(world_dir)
    arm_specs = ["sticky_artist", *args.treatment]
    sim_rate = simulator_steps_per_s(world, arm_specs, args.simulator_sessions)
    print(f"in-process simulator, same arms: {sim_rate:,.0f} steps/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        runs = http_runs(world, world_dir, arm_specs, args, Path(tmp))
    best = max(runs, key=lambda r: r["requests_per_s"])
    ratio = sim_rate / best["requests_per_s"]
    print(f"best over HTTP: {best['requests_per_s']:,.0f} requests/s ({best['replicas']} replica(s), "
          f"concurrency {best['concurrency']}); the in-process simulator is ×{ratio:,.0f} faster")
    print(json.dumps({"world": "smoke" if args.smoke else "default", "arms": arm_specs, "sessions": args.sessions,
                      "simulator_steps_per_s": round(sim_rate), "http": runs,
                      "best_requests_per_s": best["requests_per_s"], "simulator_over_http": round(ratio, 1),
                      "lost_lines": sum(r["lost_lines"] for r in runs)}))


if __name__ == "__main__":
    main()
