"""A trial's per-track lists computed as its simulations read them vs all of them up front.

    python benchmarks/bench_rung_lists.py [--params runs/NAME/TRIAL/params.json] [--threads 1] [--smoke]

Runs one search trial (``configs/search.yaml``: its first trial, the seed's model with the
overrides, or a trial's ``params.json``; rungs, serving chosen inside the trial, the paired A/B)
twice, without Ray: with the per-track lists computed as the simulations read them
(``model.infer.ItemNeighbours``, what the search does), then with every list computed when the
lists are made (what it did before). Training is deterministic and a list is the same however it
is batched (unless the embeddings crowd within faiss's float32 rounding, as the seed's model's do
on the built-in world: see ``model.infer.ItemNeighbours``), so both runs should give the very same
rung lifts and final lift (``same_lifts``): only the seconds differ. Prints, per run, wall seconds, rung seconds and their share of the trial, the rung lifts
and the final lift; then the ratio of rung (and trial) seconds up front / as read. Last printed
line: one JSON object. ``--smoke``: the tiny world and ``search:`` of ``configs/smoke.yaml``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.infer import ItemNeighbours  # noqa: E402
from sim_bridge import defaults  # noqa: E402
from sim_bridge.contract.files import with_overrides  # noqa: E402
from sim_bridge.contract.logs import read_logs  # noqa: E402
from sim_bridge.world import load_world  # noqa: E402

from search.config import parse_benchmark_args, search_defaults  # noqa: E402
from search.trial import TrialSetup, prepare, run_trial  # noqa: E402

ARMS = ("as read", "up front")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="the tiny world, configs/smoke.yaml's search settings")
    p.add_argument("--params", type=Path, help="a trial's params.json (dotted keys) laid over the first trial")
    p.add_argument("--threads", type=int, default=1, help="torch threads (a trial holds one CPU)")
    args = parse_benchmark_args(p, "bench_rung_lists", argv)
    scfg, cfg = search_defaults(args.smoke, args.threads)
    if args.params:
        params = json.loads(args.params.read_text())
        cfg = with_overrides(cfg, {k: v for k, v in params.items() if "." in k})
    world = load_world(defaults.ensure_smoke_world() if args.smoke else defaults.ensure_default_world())
    events = read_logs(defaults.ensure_smoke_logs() if args.smoke else defaults.ensure_default_logs())
    setup = TrialSetup(scfg.eval, scfg.objective, rungs=scfg.rungs, serving_search=scfg.serving_search)
    inputs = prepare(world, events, setup, cfg.features)
    runs = {}
    for arm in ARMS:
        with lists_up_front() if arm == "up front" else contextlib.nullcontext():
            t0 = time.perf_counter()
            out = run_trial(cfg, inputs, setup)
            runs[arm] = _figures(out.metrics, time.perf_counter() - t0)
    _print(runs)
    read, front = (runs[a] for a in ARMS)
    summary = {"items": inputs.data.n_items, **runs,
               "same_lifts": read["rung_lifts"] == front["rung_lifts"] and read["lift"] == front["lift"],
               "rung_seconds_ratio": front["rung_seconds"] / max(read["rung_seconds"], 1e-9),
               "wall_ratio": front["wall_s"] / read["wall_s"]}
    print(json.dumps(summary))
    return 0


@contextlib.contextmanager
def lists_up_front():
    """Every per-track list computed when a model's lists are made."""
    made = ItemNeighbours.__dict__["of"]

    def of(cls, *a, **kw):
        return made.__func__(cls, *a, **kw).compute_all()

    ItemNeighbours.of = classmethod(of)
    try:
        yield
    finally:
        ItemNeighbours.of = made


def _figures(m: dict, wall: float) -> dict:
    lifts = {k.removeprefix("rung_lift_"): float(v) for k, v in m.items()
             if k.startswith("rung_lift_") and k.removeprefix("rung_lift_").isdigit()}
    return {"wall_s": wall, "rung_seconds": float(m["rung_seconds"]), "rung_share": float(m["rung_seconds"]) / wall,
            "epochs": int(m["epoch"]), "stop_reason": m.get("stop_reason"), "rung_lifts": lifts,
            "lift": float(m["lift_vs_sticky"]), "lift_lower": float(m["lift_lower"]),
            "lift_upper": float(m["lift_upper"])}


def _print(runs: dict) -> None:
    print(f"{'lists':<9} {'wall s':>7} {'rungs s':>8} {'share':>6} {'epochs':>6}  rung lifts %  final lift % [95% CI]")
    for arm, r in runs.items():
        lifts = " ".join(f"{e}:{v:+.1f}" for e, v in sorted(r["rung_lifts"].items(), key=lambda t: int(t[0])))
        print(f"{arm:<9} {r['wall_s']:7.1f} {r['rung_seconds']:8.1f} {r['rung_share']:6.1%} {r['epochs']:>6}  "
              f"{lifts}  {r['lift']:+.1f} [{r['lift_lower']:+.1f}, {r['lift_upper']:+.1f}]")
    read, front = (runs[a] for a in ARMS)
    print(f"rung seconds up front / as read: {front['rung_seconds'] / max(read['rung_seconds'], 1e-9):.2f}x; "
          f"trial seconds {front['wall_s'] / read['wall_s']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
