"""What moves the i2i lift: one DSSM config, one lever changed at a time, paired A/B vs sticky_artist.

    python benchmarks/i2i_levers.py [--sessions 5000] [--only NAME ...] [--smoke]

The base is the seed's best (``configs/train.yaml``) with the first search's i2i winner laid over
it (l2 outputs, small margin, fast lr, tiny weight decay, i2i serving of 200-long lists). Each
lever is a set of dotted overrides on that base; every row trains on the default logs and serves
its lists on the same simulated sessions as the sticky_artist control (common random numbers),
so rows differ by the lever, not by luck. Prints a table and, last, one JSON object per row.
``--smoke``: the tiny world and its logs, 1 epoch, 300 sessions, the base row unless ``--only`` —
seconds, for CI (its lifts mean nothing).
"""
from __future__ import annotations

import argparse
import json
import time

from model.config import load_experiment_config
from model.features import build_training_data
from model.infer import item_recommendations, recommend
from model.train import train
from sim_bridge.contract.files import with_overrides
from sim_bridge.defaults import ensure_default_logs, ensure_default_world, ensure_smoke_logs, ensure_smoke_world
from sim_bridge.contract.logs import read_logs
from sim_bridge.world import load_world

from sim_bridge.abtest import control_sessions, paired_eval
from sim_bridge.policies import serving_policy

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


SMOKE = {"train.max_epochs": 1}


def run_lever(name: str, overrides: dict, world, events, control, seed: int) -> dict:
    cfg = with_overrides(load_experiment_config("configs/train.yaml"), {**BASE, **overrides})
    t0 = time.perf_counter()
    data = build_training_data(events, world.catalog, cfg.features)
    result = train(cfg, data, device="cpu")
    seconds = time.perf_counter() - t0
    policy = serving_policy(cfg.serving, world.catalog, recommend(result.model, data, cfg.serving.k, "cpu"),
                            item_recommendations(result.model, data, cfg.serving.k, "cpu"))
    ab = paired_eval(world, control, policy, seed)
    return {"lever": name, "items": data.n_items, "epochs": result.epochs, "train_s": round(seconds, 1),
            "lift": round(ab["lift_vs_sticky"], 2), "lower": round(ab["lift_lower"], 2),
            "upper": round(ab["lift_upper"], 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=5000, help="paired A/B sessions per row")
    p.add_argument("--seed", type=int, default=20240611, help="simulation seed (control and rows)")
    p.add_argument("--only", nargs="+", choices=list(LEVERS), help="run only these levers")
    p.add_argument("--smoke", action="store_true", help="tiny world and logs, 1 epoch, 300 sessions, base row")
    args = p.parse_args()
    if args.smoke:
        args.sessions, args.only = 300, args.only or ["base"]
    world = load_world(ensure_smoke_world() if args.smoke else ensure_default_world())
    events = read_logs(ensure_smoke_logs() if args.smoke else ensure_default_logs())
    control = control_sessions(world, args.sessions, args.seed)
    print(f"{'lever':<32} {'items':>6} {'epochs':>6} {'train s':>8}  lift vs sticky_artist % [95% CI]")
    rows = []
    for name in args.only or LEVERS:
        row = run_lever(name, {**LEVERS[name], **(SMOKE if args.smoke else {})}, world, events, control, args.seed)
        rows.append(row)
        print(f"{name:<32} {row['items']:>6} {row['epochs']:>6} {row['train_s']:>8}  "
              f"{row['lift']:+.1f} [{row['lower']:+.1f}, {row['upper']:+.1f}]", flush=True)
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
