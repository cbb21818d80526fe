"""One search trial's phases on the default world, without Ray: where a trial's time goes.

    python benchmarks/bench_search.py [--epochs 3] [--sessions 10000] [--threads 1]

Prints seconds for: loading inputs, building training data, each epoch, recommending, the
sticky_artist control (once per search) and the paired A/B (once per finished trial), plus the
peak RSS — what sizes ``--num-samples``, ``--max-concurrent`` and the ≤ 6 GB budget.
"""
from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace

from model.config import load_experiment_config
from model.features import build_training_data
from model.infer import recommend
from model.train import train
from sim_bridge.defaults import ensure_default_logs, ensure_default_world
from sim_bridge.logs import read_logs
from sim_bridge.world import load_world

from search.config import load_search_config
from search.evaluate import control_sessions, paired_eval


def timed(label: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"{label:<28} {time.perf_counter() - t0:8.1f} s", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--sessions", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    scfg = load_search_config("configs/search.yaml")
    cfg = load_experiment_config(scfg.base)
    cfg = replace(cfg, train=replace(cfg.train, max_epochs=args.epochs, num_threads=args.threads))
    sessions = args.sessions or scfg.eval.sessions
    world = timed("load world", load_world, ensure_default_world())
    events = timed("read logs", read_logs, ensure_default_logs())
    data = timed("build training data", build_training_data, events, world.catalog, cfg.features)
    print(f"  {len(data.train)} train triplets, {data.n_items} items, {len(data.user_ids)} users")
    result = timed(f"train {args.epochs} epochs", train, cfg, data, on_epoch=lambda r: print(f"  {r}"), device="cpu")
    recs = timed("recommend (k=100)", recommend, result.model, data, k=scfg.eval.k, device="cpu")
    control = timed(f"control sticky ({sessions})", control_sessions, world, sessions, scfg.eval.seed)
    metrics = timed("paired A/B", paired_eval, world, control, recs, scfg.eval.seed)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")


if __name__ == "__main__":
    main()
