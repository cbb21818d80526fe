"""Rungs on exact vs approximate per-track lists: what they cost in a trial, and whether they agree.

    python benchmarks/bench_rung_lists.py [--nprobe 8] [--threads 1] [--smoke]

Runs the search's first trial (``configs/search.yaml``: the seed's model, ``min_positives`` 1,
i2i over 200-long lists, rungs, serving chosen inside the trial, the paired A/B) twice, without
Ray: with exact lists at the rungs (faiss flat), then with approximate ones (faiss IVF,
``--nprobe`` cells scanned of about 4·√K). Training is deterministic and the rungs only read the
model, so both trials see the very same weights at every rung they share: the difference of
their rung lifts is the approximation's error alone. Prints, per rung epoch, both rung lifts;
per trial, wall seconds, rung seconds and their share, epochs and the final (exact) paired lift;
and the ratio of rung seconds exact / approximate. Last printed line: one JSON object.
``--smoke``: the tiny world and ``search:`` of ``configs/smoke.yaml``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sim_bridge import defaults  # noqa: E402
from sim_bridge.contract.logs import read_logs  # noqa: E402
from sim_bridge.world import load_world  # noqa: E402

from search.config import parse_benchmark_args, search_defaults  # noqa: E402
from search.trial import TrialSetup, prepare, run_trial  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="the tiny world, configs/smoke.yaml's search settings")
    p.add_argument("--nprobe", type=int, default=8, help="IVF cells scanned per query at the rungs")
    p.add_argument("--threads", type=int, default=1, help="torch threads (a trial holds one CPU)")
    args = parse_benchmark_args(p, "bench_rung_lists", argv)
    scfg, base = search_defaults(args.smoke, args.threads)
    world = load_world(defaults.ensure_smoke_world() if args.smoke else defaults.ensure_default_world())
    events = read_logs(defaults.ensure_smoke_logs() if args.smoke else defaults.ensure_default_logs())
    setup = TrialSetup(scfg.eval, scfg.objective, rungs=scfg.rungs, serving_search=scfg.serving_search)
    inputs = prepare(world, events, setup, base.features)
    runs = {}
    for name, nprobe in (("exact", 0), ("approximate", args.nprobe)):
        rungs = dataclasses.replace(scfg.rungs, list_nprobe=nprobe)
        t0 = time.perf_counter()
        out = run_trial(base, inputs, dataclasses.replace(setup, rungs=rungs))
        runs[name] = _figures(out.metrics, time.perf_counter() - t0)
    _print(runs, args.nprobe)
    exact, approx = runs["exact"], runs["approximate"]
    shared = sorted(set(exact["rung_lifts"]) & set(approx["rung_lifts"]), key=int)
    diffs = [approx["rung_lifts"][e] - exact["rung_lifts"][e] for e in shared]
    summary = {"nprobe": args.nprobe, "items": inputs.data.n_items, **runs,
               "rung_lift_diffs": diffs, "max_abs_diff": max(map(abs, diffs)) if diffs else None,
               "rung_seconds_ratio": exact["rung_seconds"] / max(approx["rung_seconds"], 1e-9)}
    print(json.dumps(summary))
    return 0


def _figures(m: dict, wall: float) -> dict:
    lifts = {k.removeprefix("rung_lift_"): float(v) for k, v in m.items()
             if k.startswith("rung_lift_") and k.removeprefix("rung_lift_").isdigit()}
    return {"wall_s": wall, "rung_seconds": float(m["rung_seconds"]), "rung_share": float(m["rung_seconds"]) / wall,
            "epochs": int(m["epoch"]), "stop_reason": m.get("stop_reason"), "rung_lifts": lifts,
            "lift": float(m["lift_vs_sticky"]), "lift_lower": float(m["lift_lower"]),
            "lift_upper": float(m["lift_upper"])}


def _print(runs: dict, nprobe: int) -> None:
    exact, approx = runs["exact"], runs["approximate"]
    print(f"{'rung epoch':>10} {'exact %':>9} {f'nprobe {nprobe} %':>12} {'diff':>7}")
    for e in sorted(set(exact["rung_lifts"]) | set(approx["rung_lifts"]), key=int):
        a, b = exact["rung_lifts"].get(e), approx["rung_lifts"].get(e)
        diff = f"{b - a:+7.2f}" if a is not None and b is not None else f"{'':>7}"
        print(f"{e:>10} {a if a is not None else float('nan'):9.2f} {b if b is not None else float('nan'):12.2f} {diff}")
    print(f"\n{'trial':<12} {'wall s':>7} {'rungs s':>8} {'share':>6} {'epochs':>6}  final lift % [95% CI]  stop")
    for name, r in runs.items():
        print(f"{name:<12} {r['wall_s']:7.1f} {r['rung_seconds']:8.1f} {r['rung_share']:6.1%} {r['epochs']:>6}  "
              f"{r['lift']:+.1f} [{r['lift_lower']:+.1f}, {r['lift_upper']:+.1f}]  {r['stop_reason']}")
    print(f"rung seconds exact / approximate: {exact['rung_seconds'] / max(approx['rung_seconds'], 1e-9):.2f}x")


if __name__ == "__main__":
    sys.exit(main())
