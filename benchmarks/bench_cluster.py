"""The search on one node vs two: trials per minute of the same search, and their ratio.

    .venv/bin/python benchmarks/bench_cluster.py [--num-samples 12] [--smoke]

Starts a Ray cluster of one node (a ``ray start --head`` process with ``--cpus-per-node`` CPUs),
runs the smoke search on it (``python -m search.run --smoke-test --address ...``, experiment on a
``file://`` URI, the shared storage a cluster's nodes would mount), stops it; then the same with a
second node (``ray start --address``, a Python without the project, its own working directory
and cache: :mod:`search.local_cluster`). Each node's training-data cache starts empty. Trials per
minute = trials / (last trial end - first trial start), from trials.parquet; the ratio is two
nodes over one. On one machine both nodes share its cores and disk: the ratio is what a second
node adds here, not what a second machine would. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from search.config import parse_benchmark_args  # noqa: E402
from search.local_cluster import LocalCluster, bare_python  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks/bench_cluster.py", description=__doc__.splitlines()[0])
    p.add_argument("--num-samples", type=int, default=12, help="trials of each search")
    p.add_argument("--cpus-per-node", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="configs/smoke.yaml's benchmarks.bench_cluster")
    return parse_benchmark_args(p, "bench_cluster", argv)


def throughput(frame: pd.DataFrame) -> dict:
    """Trials, the window from the first trial's start to the last one's end, trials per minute."""
    end = frame["timestamp"].astype(float)
    start = end - frame["duration_s"].astype(float)
    minutes = (end.max() - start.min()) / 60
    return {"trials": int(len(frame)), "minutes": round(float(minutes), 3),
            "trials_per_min": round(len(frame) / minutes, 3) if minutes > 0 else None,
            "statuses": {k: int(v) for k, v in frame["status"].value_counts().items()}}


def search_on(nodes: int, args, root: Path) -> dict:
    """Start a cluster of ``nodes`` nodes under ``root``, run the smoke search on it, stop it."""
    root.mkdir(parents=True)
    cluster = LocalCluster(root)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        cluster.start_head(num_cpus=args.cpus_per_node, env={**env, "BOTIFY_TUNE_CACHE": str(root / "cache-head")})
        for i in range(1, nodes):
            cwd = root / f"cwd-{i}"
            cwd.mkdir()
            cluster.add_worker(f"worker{i}", num_cpus=args.cpus_per_node, cwd=cwd,
                               env={**env, "BOTIFY_TUNE_CACHE": str(root / f"cache-{i}")},
                               python=bare_python(root / "venv") if i == 1 else str(root / "venv" / "bin" / "python"))
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "search.run", "--smoke-test", "--num-samples", str(args.num_samples),
             "--address", cluster.address, "--storage-path", f"file://{root / 'shared'}",
             "--local-dir", str(root / "local"), "--name", "bench", "--max-concurrent", str(nodes * args.cpus_per_node)],
            cwd=root, env={**env, "PYTHONPATH": str(REPO), **cluster.auth_env()}, capture_output=True, text=True,
            timeout=3600)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"error: the search on {nodes} node(s) failed (exit {proc.returncode}): "
                             f"{(proc.stdout + proc.stderr)[-3000:]}")
        ids = [n.node_id() for n in cluster.nodes]
    finally:
        cluster.stop()
    frame = pd.read_parquet(root / "local" / "bench" / "trials.parquet")
    per_node = {f"node{ids.index(n) + 1 if n in ids else '?'}": int(c) for n, c in frame["node_id"].value_counts().items()}
    return {**throughput(frame), "search_wall_s": round(wall, 1), "trials_per_node": per_node}


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="btb", dir="/tmp"))  # short: Ray's socket paths
    try:
        one = search_on(1, args, root / "one")
        print(f"one node:  {one['trials']} trials in {one['minutes']:.2f} min = {one['trials_per_min']} trials/min "
              f"(search {one['search_wall_s']} s; {one['trials_per_node']})", flush=True)
        two = search_on(2, args, root / "two")
        print(f"two nodes: {two['trials']} trials in {two['minutes']:.2f} min = {two['trials_per_min']} trials/min "
              f"(search {two['search_wall_s']} s; {two['trials_per_node']})", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = round(two["trials_per_min"] / one["trials_per_min"], 3)
    print(f"two nodes / one node: {ratio}x trials per minute ({os.cpu_count()} cores on this machine, "
          f"{args.cpus_per_node} CPU per node)", flush=True)
    print(json.dumps({"one_node": one, "two_nodes": two, "ratio": ratio, "cpus_per_node": args.cpus_per_node,
                      "machine_cores": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
