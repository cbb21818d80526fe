"""Training speed of the seed's best DSSM: triplets/s, s/epoch, time to early stop.

    .venv/bin/python benchmarks/bench_train.py [--logs PATH [--catalog PATH]] [--threads 1]
        [--config configs/train.yaml] [--variant NAME] [--steps 150] [--full/--no-full] [--smoke]

Data: the default training logs (``configs/logging.yaml``, generated and cached on first use), or
``--logs`` (botify logs; catalog default tracks.json beside them), or ``--synthetic`` — a seeded
synthetic log of ``--events`` events (``tests.synthetic``; its losses mean nothing, its speed does).
``--smoke``: the tiny world's logs, ``benchmarks.bench_train`` of ``configs/smoke.yaml`` (5 batches, a
1-epoch full run) — seconds, for CI.

Measures, in the same process and thread count, on ``--steps`` batches each: the sparse-gradient
path (EmbeddingBag sparse=True + ``model.lazy_adam.LazyAdam``, lazy: untouched rows do not move;
the search's default), the same with torch's ``SparseAdam`` (and the coupled L2 added to the
touched rows by hand: the same update, before LazyAdam), and the dense-gradient baseline (one
Adam over everything, as the seed table trains); then (``--full``) a whole training run of the
config to early stop. Last printed line: one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim_bridge.contract.files import with_overrides  # noqa: E402

from model.config import load_experiment_config  # noqa: E402
from model.dssm import build_model  # noqa: E402
from model.features import build_training_data  # noqa: E402
from model.infer import recommend  # noqa: E402
from tests.synthetic import synthetic_catalog, synthetic_events  # noqa: E402
from model.train import _Batches, _optimizers, train  # noqa: E402
from search.config import parse_benchmark_args  # noqa: E402


def load_data(args, cfg):
    if not args.synthetic:
        from sim_bridge.contract.catalog import read_catalog
        from sim_bridge.defaults import ensure_default_logs, ensure_smoke_logs
        from sim_bridge.contract.logs import read_logs
        logs = Path(args.logs) if args.logs else ensure_smoke_logs() if args.smoke else ensure_default_logs()
        catalog = read_catalog(args.catalog or logs.parent / "tracks.json")
        return build_training_data(read_logs(logs), catalog, cfg.features), f"logs:{logs}"
    catalog = synthetic_catalog(50_000, n_genres=20, seed=0)
    events = synthetic_events(catalog, 10_000, args.events, seed=0)
    return build_training_data(events, catalog, cfg.features), f"synthetic:{args.events}_events"


def torch_sparse_adam(model, tc):
    """The sparse path before LazyAdam: the training's optimisers with torch's SparseAdam for the tables."""
    return [*_optimizers(model, tc)[:-1], torch.optim.SparseAdam(model.sparse_parameters(), lr=tc.lr)]


def l2_on_touched_rows(params, wd: float) -> None:
    """Adam's coupled L2 on the rows a sparse gradient touched (what LazyAdam does inside)."""
    for p in params:
        if wd and p.grad is not None:
            g = p.grad.coalesce()
            vals = g.values() + wd * p.detach()[g.indices()[0]]
            p.grad = torch.sparse_coo_tensor(g.indices(), vals, g.shape)


def steps_per_second(cfg, data, steps: int, optimizers=_optimizers) -> float:
    """Training batches per second (forward, backward, optimiser) over ``steps`` batches."""
    torch.manual_seed(0)
    model = build_model(cfg.model, data)
    opts = optimizers(model, cfg.train)
    by_hand = optimizers is torch_sparse_adam
    batches = _Batches(data, torch.device("cpu"))
    trips = batches.split(data.train[: steps * cfg.train.batch_size])
    t0 = time.perf_counter()
    for s in range(0, len(trips), cfg.train.batch_size):
        loss = model.grouped_loss(*batches.batch(trips[s:s + cfg.train.batch_size]))
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if by_hand:
            l2_on_touched_rows(model.sparse_parameters(), cfg.train.weight_decay)
        for opt in opts:
            opt.step()
    return (len(trips) / cfg.train.batch_size) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/train.yaml")
    p.add_argument("--variant")
    p.add_argument("--logs")
    p.add_argument("--catalog")
    p.add_argument("--synthetic", action="store_true", help="a synthetic log instead of the default logs")
    p.add_argument("--events", type=int, default=600_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--full", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--max-epochs", type=int, default=None, help="train.max_epochs of the full run (default: config's)")
    p.add_argument("--smoke", action="store_true", help="tiny world's logs, configs/smoke.yaml's steps and epochs")
    args = parse_benchmark_args(p, "bench_train")
    torch.set_num_threads(args.threads)
    cfg = load_experiment_config(args.config, args.variant)
    cfg = with_overrides(cfg, {"train.num_threads": args.threads})
    if args.max_epochs is not None:
        cfg = with_overrides(cfg, {"train.max_epochs": args.max_epochs})
    t0 = time.perf_counter()
    data, source = load_data(args, cfg)
    data_s = time.perf_counter() - t0
    bs = cfg.train.batch_size
    sparse_sps = steps_per_second(cfg, data, args.steps)
    torch_sparse_sps = steps_per_second(cfg, data, args.steps, torch_sparse_adam)
    dense_sps = steps_per_second(with_overrides(cfg, {"model.sparse_bag": False}), data, args.steps)
    steps_epoch = -(-len(data.train) // bs)
    out = {
        "source": source, "threads": args.threads, "n_train": len(data.train), "n_items": data.n_items,
        "n_users": len(data.user_ids), "data_seconds": round(data_s, 2),
        "sparse_triplets_per_s": round(sparse_sps * bs), "dense_triplets_per_s": round(dense_sps * bs),
        "speedup_sparse_vs_dense": round(sparse_sps / dense_sps, 2),
        "torch_sparse_adam_triplets_per_s": round(torch_sparse_sps * bs),
        "speedup_lazy_adam_vs_torch_sparse_adam": round(sparse_sps / torch_sparse_sps, 2),
        "est_s_per_epoch_sparse": round(steps_epoch / sparse_sps, 2),
        "est_s_per_epoch_dense": round(steps_epoch / dense_sps, 2),
    }
    print(json.dumps(out), flush=True)
    if args.full:
        res = train(cfg, data, on_epoch=lambda r: print(
            f"epoch {r['epoch']} train {r['train_loss']:.4f} val {r['val_loss']:.4f} lr {r['lr']:.0e} "
            f"{r['seconds']:.1f}s", flush=True), device="cpu")
        t1 = time.perf_counter()
        recommend(res.model, data, k=100, device="cpu")
        out.update({
            "epochs": res.epochs, "best_epoch": res.best_epoch, "best_val_loss": round(res.best_val_loss, 5),
            "stopped_early": res.stopped_early, "time_to_stop_s": round(res.seconds, 1),
            "s_per_epoch": round(res.seconds / res.epochs, 2), "recommend_s": round(time.perf_counter() - t1, 2),
        })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
