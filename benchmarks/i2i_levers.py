"""What moves the i2i lift: one DSSM config, one lever changed at a time, paired A/B vs sticky_artist.

    python benchmarks/i2i_levers.py [--sessions 5000] [--only NAME ...] [--max-epochs N] [--smoke]

The base is the seed's best (``configs/train.yaml``) with the first search's i2i winner laid over
it (l2 outputs, small margin, fast lr, tiny weight decay, i2i serving of 200-long lists). Each
lever is a set of dotted overrides on that base; every row trains on the default logs and serves
its lists on the same simulated sessions as the sticky_artist control (common random numbers),
so rows differ by the lever, not by luck. Each row is one :func:`search.trial.run_trial` (no rungs,
no serving search). Prints a table and, last, one JSON object per row.
``--smoke``: the tiny world and its logs, with ``benchmarks.i2i_levers`` of ``configs/smoke.yaml``
(1 epoch, 300 sessions, the base row) — seconds, for CI (its lifts mean nothing).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.config import load_experiment_config  # noqa: E402
from sim_bridge.contract.files import with_overrides  # noqa: E402
from sim_bridge.defaults import (ensure_default_logs, ensure_default_world, ensure_smoke_logs,  # noqa: E402
                                 ensure_smoke_world)
from sim_bridge.contract.logs import read_logs  # noqa: E402
from sim_bridge.world import load_world  # noqa: E402

from search.config import EvalConfig, parse_benchmark_args  # noqa: E402
from search.trial import TrialInputs, TrialSetup, prepare, run_trial  # noqa: E402

BASE = {  # the first 50-trial search's winner (f16852c1), rounded
    "model.norm": "l2", "model.margin": 0.29, "train.lr": 5.1e-3, "train.weight_decay": 2.2e-6,
    "train.max_epochs": 25, "train.num_threads": 1,
    "serving.policy": "i2i", "serving.k": 200, "serving.like_threshold": 0.5, "serving.skip_artists": 3,
}
LEVERS = {
    "base": {},
    "skip_artists 1": {"serving.skip_artists": 1},
    "history_len 10": {"features.history_len": 10},
    "n_negatives 20": {"features.n_negatives": 20},
    "item_id_embedding": {"model.item_id_embedding": True},
    "artist_embedding": {"model.artist_embedding": True},
    "positive_threshold 0.5": {"features.positive_threshold": 0.5},
    "min_positives 2": {"features.min_positives": 2},
    "min_positives 1": {"features.min_positives": 1},
    "min_positives 1, threshold 0.5": {"features.min_positives": 1, "features.positive_threshold": 0.5},
}



def run_lever(name: str, overrides: dict, inputs: TrialInputs, setup: TrialSetup) -> dict:
    cfg = with_overrides(load_experiment_config(REPO / "configs" / "train.yaml"), {**BASE, **overrides})
    t0 = time.perf_counter()
    out = run_trial(cfg, inputs, setup)  # the data of this lever's features, then training
    m = out.metrics
    return {"lever": name, "items": out.data.n_items, "epochs": m["epoch"],
            "train_s": round(time.perf_counter() - t0, 1), "lift": round(m["lift_vs_sticky"], 2),
            "lower": round(m["lift_lower"], 2), "upper": round(m["lift_upper"], 2)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=5000, help="paired A/B sessions per row")
    p.add_argument("--seed", type=int, default=20240611, help="simulation seed (control and rows)")
    p.add_argument("--only", nargs="+", choices=list(LEVERS), help="run only these levers")
    p.add_argument("--max-epochs", type=int, default=None, help="train.max_epochs of every row (default BASE's)")
    p.add_argument("--smoke", action="store_true", help="tiny world and logs, configs/smoke.yaml's settings")
    args = parse_benchmark_args(p, "i2i_levers", argv)
    world = load_world(ensure_smoke_world() if args.smoke else ensure_default_world())
    events = read_logs(ensure_smoke_logs() if args.smoke else ensure_default_logs())
    setup = TrialSetup(EvalConfig(sessions=args.sessions, seed=args.seed))
    inputs = prepare(world, events, setup, None)  # no shared data: each lever builds its features' own
    epochs = {} if args.max_epochs is None else {"train.max_epochs": args.max_epochs}
    print(f"{'lever':<32} {'items':>6} {'epochs':>6} {'train s':>8}  lift vs sticky_artist % [95% CI]")
    rows = []
    for name in args.only or LEVERS:
        row = run_lever(name, {**LEVERS[name], **epochs}, inputs, setup)
        rows.append(row)
        print(f"{name:<32} {row['items']:>6} {row['epochs']:>6} {row['train_s']:>8}  "
              f"{row['lift']:+.1f} [{row['lower']:+.1f}, {row['upper']:+.1f}]", flush=True)
    for row in rows:
        print(json.dumps(row))

if __name__ == "__main__":
    main()
