"""Closer to the ceiling: what each item-space lever is worth, beside what perfect item embeddings give.

    python benchmarks/item_space_levers.py [--epochs 3] [--sessions 10000] [--only NAME ...] [--smoke]

Every DSSM row trains one configuration on the default logs for ``--epochs`` epochs (no rungs),
chooses its serving the way a search trial does (``serving_search`` of ``configs/search.yaml``:
the policy, then its knobs, on the tuning seed's sessions) and is scored by the paired A/B vs
sticky_artist on the evaluation seed's sessions (common random numbers: every row meets the same
listeners, so rows differ by the lever, not by luck). The base row is the first search on the
built-in world's winner (``BASE``: +81% confirmed at 12 epochs, served ``contextual`` when the
serving search still chose the policy first); each lever is a set of dotted overrides on it.

The ceiling rows put the world's hidden embeddings in place of a model's: per-track lists by
cosine and by inner product, served through the same serving search and A/B. This script reads
the simulator's hidden truth on purpose (as ``benchmarks/list_anatomy.py`` does): it measures
how far a model's item space is from the best one the world allows. The model side never does.

Prints a table and, last, one JSON object per row. ``--smoke``: the tiny world and its logs with
``benchmarks.item_space_levers`` of ``configs/smoke.yaml`` (seconds, for CI; lifts mean nothing).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sim_bridge.abtest import paired_eval  # noqa: E402
from sim_bridge.contract.files import with_overrides  # noqa: E402
from sim_bridge.contract.logs import read_logs  # noqa: E402
from sim_bridge.contract.recs import ServingConfig  # noqa: E402
from sim_bridge.defaults import (ensure_default_logs, ensure_default_world, ensure_smoke_logs,  # noqa: E402
                                 ensure_smoke_world)
from sim_bridge.policy_specs import needs_item_lists, serving_policy  # noqa: E402
from sim_bridge.world import load_world  # noqa: E402

from search.config import EvalConfig, parse_benchmark_args, search_defaults  # noqa: E402
from search.serving_search import Lists, ServingTuner  # noqa: E402
from search.trial import TrialInputs, TrialSetup, prepare, run_trial  # noqa: E402

BASE = {  # the first search on world v3 (13 trials, 25.6 min): its best, rounded
    "features.positive_threshold": 0.36, "features.min_positives": 2, "features.n_negatives": 5,
    "model.embedding_dim": 128, "model.margin": 0.81, "model.artist_embedding": True,
    "train.lr": 7.7e-3, "train.weight_decay": 1.9e-6, "train.min_delta": 0.003, "train.num_threads": 1,
}
LEVERS = {  # dotted training overrides; a "skip_grid" entry replaces the serving search's skip_artists values
    "base": {},
    "skip_artists grid up to 5 (before)": {"skip_grid": [0, 1, 2, 3, 5]},
    "session pairs, window 10": {"features.pair_window": 10},
    "session pairs, window 10, weight 3": {"features.pair_window": 10, "train.pair_weight": 3.0},
    "artist co-occurrence vectors, 32": {"features.cooc_dim": 32},
    "item-id embeddings": {"model.item_id_embedding": True},
    "l2 outputs": {"model.norm": "l2"},
}
CEILINGS = ("true embeddings, cosine", "true embeddings, inner product")


def lever_row(name: str, base, overrides: dict, inputs: TrialInputs, setup: TrialSetup) -> dict:
    """Train ``base`` (the search's trial config) with ``BASE`` and ``overrides``, choose the serving, A/B: one row."""
    overrides = dict(overrides)
    skip_grid = overrides.pop("skip_grid", None)
    if skip_grid is not None:
        knobs = {**setup.serving_search.knobs, "skip_artists": skip_grid}
        setup = replace(setup, serving_search=replace(setup.serving_search, knobs=knobs))
    cfg = with_overrides(base, {**BASE, **overrides})
    t0 = time.perf_counter()
    out = run_trial(cfg, inputs, setup)
    m = out.metrics
    return _row(name, m, out.cfg.serving, items=out.data.n_items, pairs=len(out.data.pairs),
                epochs=m["epoch"], val_loss=round(m["val_loss"], 4), seconds=round(time.perf_counter() - t0, 1))


def ceiling_row(name: str, inputs: TrialInputs, setup: TrialSetup, k: int) -> dict:
    """The world's hidden embeddings as the item space: lists, serving search, A/B."""
    emb = np.ascontiguousarray(inputs.world.embeddings, dtype=np.float32)
    if "cosine" in name:
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(emb)
    _, rows = index.search(emb, k + 1)
    lists = Lists(None, {t: r[r != t][:k] for t, r in enumerate(rows.astype(np.int64))})
    search = setup.serving_search
    item_only = replace(search, policies=[p for p in search.policies if needs_item_lists(p)])
    tuner = ServingTuner(item_only, inputs.simulator, inputs.tuning_control, item_only.seed)
    t0 = time.perf_counter()
    choice = tuner.search(lists, ServingConfig(policy="i2i", k=k))
    policy = serving_policy(choice.serving, inputs.world.catalog, None, lists.truncated(choice.serving.k).item)
    m = paired_eval(inputs.world, inputs.control, policy, setup.eval.seed, inputs.simulator)
    return _row(name, m, choice.serving, items=len(emb), seconds=round(time.perf_counter() - t0, 1))


def _row(name: str, m: dict, serving: ServingConfig, **extra) -> dict:
    return {"lever": name, **extra, "serving": _serving_text(serving), "lift": round(m["lift_vs_sticky"], 2),
            "lower": round(m["lift_lower"], 2), "upper": round(m["lift_upper"], 2)}


def _serving_text(s: ServingConfig) -> str:
    if s.policy == "i2i":
        return f"i2i k={s.k} like={s.like_threshold} skip={s.skip_artists}"
    return f"{s.policy} k={s.k}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="training epochs of every DSSM row")
    p.add_argument("--sessions", type=int, default=10000, help="paired A/B sessions per row")
    p.add_argument("--only", nargs="+", choices=[*LEVERS, *CEILINGS], help="run only these rows")
    p.add_argument("--smoke", action="store_true", help="tiny world and logs, configs/smoke.yaml's settings")
    args = parse_benchmark_args(p, "item_space_levers", argv)
    world = load_world(ensure_smoke_world() if args.smoke else ensure_default_world())
    events = read_logs(ensure_smoke_logs() if args.smoke else ensure_default_logs())
    scfg, base = search_defaults(smoke=False, threads=1)  # the full search's trial config (smoke: the tiny world only)
    setup = TrialSetup(EvalConfig(sessions=args.sessions, seed=scfg.eval.seed), serving_search=scfg.serving_search)
    inputs = prepare(world, events, setup, None)  # each row builds the data of its own features
    k = max(int(v) for v in scfg.serving_search.knobs.get("k", [scfg.overrides.get("serving.k", 100)]))
    print(f"{'row':<36} {'epochs':>6} {'seconds':>8}  {'serving':<28} lift vs sticky_artist % [95% CI]")
    rows = []
    for name in args.only or [*LEVERS, *CEILINGS]:
        if name in CEILINGS:
            row = ceiling_row(name, inputs, setup, k)
        else:
            row = lever_row(name, base, {**LEVERS[name], "train.max_epochs": args.epochs}, inputs, setup)
        rows.append(row)
        print(f"{name:<36} {row.get('epochs', '-'):>6} {row['seconds']:>8}  {row['serving']:<28} "
              f"{row['lift']:+.1f} [{row['lower']:+.1f}, {row['upper']:+.1f}]", flush=True)
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
