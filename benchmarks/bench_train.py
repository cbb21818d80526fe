"""Training speed: today's training step beside the one before it, phase by phase, in one run.

    .venv/bin/python benchmarks/bench_train.py [--logs PATH [--catalog PATH]] [--threads 1]
        [--steps 60] [--rounds 3] [--profile-steps 20] [--full/--no-full] [--smoke]

Data: the default training logs (``configs/logging.yaml``, generated and cached on first use), or
``--logs`` (botify logs; catalog default tracks.json beside them). ``--smoke``: the tiny world's
logs and ``configs/smoke.yaml``'s steps — seconds, for CI.

Two configurations, each on the same batches, the same seed and the same thread count: the seed's
(``configs/train.yaml``) and the card's default trial (the search's base with its overrides, as
``search.run`` trains its first trial). Two paths, alternated ``--rounds`` times so that the
machine's noise falls on both alike:

* ``before``: the user tower's layers on every triplet's row (B rows) and the dense Adam as torch
  runs it by default (one kernel per operation and tensor);
* ``now``: what ``model.train`` runs — the user tower once per distinct masked bag (about
  B / n_negatives rows: ``DSSM.grouped_loss``) and the fused dense Adam.

Both compute the same loss and the same update (tests/model/test_train_speed_paths.py holds the
loss curves together). Printed per configuration and path: milliseconds per batch in batch
assembly, forward, backward and the optimisers; then a ``torch.profiler`` breakdown of the
``now`` path's operator time into matrix products, gathers/scatters and the rest, with the
products' achieved GFLOP/s beside this core's on one large product (what limits a step). With
``--full``, a whole training run of the seed's configuration to early stop. The last line is
one JSON object; ``speedup_vs_before`` is the seed configuration's triplets/s ratio.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim_bridge.contract.files import with_overrides  # noqa: E402

from model.config import load_experiment_config  # noqa: E402
from model.dssm import build_model  # noqa: E402
from model.features import build_training_data  # noqa: E402
from model.train import _Batches, _optimizers, grouped_permutation, positive_runs, train  # noqa: E402
from search.config import parse_benchmark_args, search_defaults  # noqa: E402

PHASES = ("batch", "forward", "backward", "optimiser")
MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul"}
GATHER_OPS = ("index", "embedding", "scatter", "gather", "unique", "sort", "take")


def before_loss(model, uhist, inv, pos, neg, pos1, neg1):
    """The step before: the user tower's layers on every triplet's row."""
    bags, row = model.user_tower.masked_bag(uhist, inv, pos1, neg1)
    return model.triplet_loss(model.user_tower.head(bags[row]), pos, neg)


def before_optimizers(model, tc):
    """The training's optimisers with torch's default (unfused) dense Adam."""
    opts = _optimizers(model, tc)
    dense = opts[0].param_groups[0]["params"]
    return [torch.optim.Adam(dense, lr=tc.lr, weight_decay=tc.weight_decay), *opts[1:]]


PATHS = {
    "before": (before_loss, before_optimizers),
    "now": (lambda model, *args: model.grouped_loss(*args), _optimizers),
}


class PathRunner:
    """One path's model and optimisers, stepped on given batches with each phase timed."""

    def __init__(self, cfg, data, path: str):
        torch.manual_seed(cfg.train.seed)
        self.loss_fn, make_opts = PATHS[path]
        self.model = build_model(cfg.model, data)
        self.opts = make_opts(self.model, cfg.train)
        self.batches = _Batches(data, torch.device("cpu"))
        self.reset()

    def reset(self) -> None:
        self.seconds, self.triplets, self.steps = dict.fromkeys(PHASES, 0.0), 0, 0

    def step(self, trip: torch.Tensor) -> None:
        t0 = time.perf_counter()
        args = self.batches.batch(trip)
        t1 = time.perf_counter()
        loss = self.loss_fn(self.model, *args)
        t2 = time.perf_counter()
        for opt in self.opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        for opt in self.opts:
            opt.step()
        t4 = time.perf_counter()
        for phase, dt in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            self.seconds[phase] += dt
        self.triplets += len(trip)
        self.steps += 1

    def triplets_per_s(self) -> float:
        return self.triplets / sum(self.seconds.values())


def batch_list(cfg, data, n: int) -> list[torch.Tensor]:
    """The first ``n`` training batches of epoch 1, in the training's own grouped order."""
    train_t = torch.as_tensor(data.train, dtype=torch.int64)
    perm = grouped_permutation(*positive_runs(train_t), torch.Generator().manual_seed(cfg.train.seed))
    bs = cfg.train.batch_size
    return [train_t[perm[s:s + bs]] for s in range(0, min(len(perm), n * bs), bs)]


def compare(cfg, data, steps: int, rounds: int) -> dict[str, PathRunner]:
    """Both paths on the same ``steps`` batches, alternated ``rounds`` times (one warm-up batch each)."""
    batches = batch_list(cfg, data, steps)
    runners = {path: PathRunner(cfg, data, path) for path in PATHS}
    for runner in runners.values():
        runner.step(batches[0])
        runner.reset()
    for _ in range(rounds):
        for runner in runners.values():
            for trip in batches:
                runner.step(trip)
    return runners


def op_breakdown(cfg, data, steps: int) -> dict[str, float]:
    """Shares of the ``now`` path's operator self time, and its matrix products' GFLOP/s."""
    runner = PathRunner(cfg, data, "now")
    batches = batch_list(cfg, data, steps + 1)
    runner.step(batches[0])
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for trip in batches[1:]:
            runner.step(trip)
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events)
    matmul = [e for e in events if e.key in MATMUL_OPS]
    gather = [e for e in events if any(g in e.key for g in GATHER_OPS)]
    mm_us = sum(e.self_cpu_time_total for e in matmul)
    mm_gflops = sum(e.flops for e in matmul) / max(mm_us, 1e-9) / 1e3
    return {"matmul_share": mm_us / total, "gather_scatter_share": sum(e.self_cpu_time_total for e in gather) / total,
            "matmul_gflops": mm_gflops, "core_peak_gflops": core_gflops()}


def core_gflops() -> float:
    """GFLOP/s of one large float32 matrix product on this thread count (the core's practical peak)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    t0 = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * 1024 ** 3 / (time.perf_counter() - t0) / 1e9


def load_data(args, cfg):
    from sim_bridge.contract.catalog import read_catalog
    from sim_bridge.contract.logs import read_logs
    from sim_bridge.defaults import ensure_default_logs, ensure_smoke_logs
    logs = Path(args.logs) if args.logs else ensure_smoke_logs() if args.smoke else ensure_default_logs()
    catalog = read_catalog(args.catalog or logs.parent / "tracks.json")
    return build_training_data(read_logs(logs), catalog, cfg.features), f"logs:{logs}"


def configurations(args) -> dict:
    seed = load_experiment_config(args.config)
    _, card = search_defaults(args.smoke, args.threads)
    return {"seed": with_overrides(seed, {"train.num_threads": args.threads}), "card_default": card}


def print_phases(name: str, runners: dict[str, PathRunner]) -> None:
    print(f"{name}: ms per batch " + "".join(f"{p:>11}" for p in PHASES) + "   triplets/s")
    for path, r in runners.items():
        print(f"  {path:<18}" + "".join(f"{1000 * r.seconds[p] / r.steps:11.2f}" for p in PHASES)
              + f"   {r.triplets_per_s():10.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/train.yaml", help="the seed's configuration")
    p.add_argument("--logs")
    p.add_argument("--catalog")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=60, help="batches per path and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--profile-steps", type=int, default=20)
    p.add_argument("--full", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--max-epochs", type=int, default=None, help="train.max_epochs of the full run (default: config's)")
    p.add_argument("--smoke", action="store_true", help="tiny world's logs, configs/smoke.yaml's steps and epochs")
    args = parse_benchmark_args(p, "bench_train")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as model.train does
    out: dict = {"threads": args.threads}
    for name, cfg in configurations(args).items():
        data, out["source"] = load_data(args, cfg)
        runners = compare(cfg, data, args.steps, args.rounds)
        print_phases(name, runners)
        ops = op_breakdown(cfg, data, args.profile_steps)
        print(f"  now, operator time: matrix products {ops['matmul_share']:.0%} at {ops['matmul_gflops']:.1f} "
              f"GFLOP/s (this core: {ops['core_peak_gflops']:.0f} on a 1024^3 product), gathers/scatters "
              f"{ops['gather_scatter_share']:.0%}, the rest (element-wise, loss, norms) "
              f"{1 - ops['matmul_share'] - ops['gather_scatter_share']:.0%}", flush=True)
        before, now = runners["before"].triplets_per_s(), runners["now"].triplets_per_s()
        out[name] = {"n_train": len(data.train), "n_items": data.n_items, "before_triplets_per_s": round(before),
                     "now_triplets_per_s": round(now), "speedup": round(now / before, 3),
                     **{k: round(v, 3) for k, v in ops.items()}}
        if name == "seed":
            seed_cfg, seed_data = cfg, data
    out["speedup_vs_before"] = out["seed"]["speedup"]
    if args.full:
        full_cfg = seed_cfg
        if args.max_epochs is not None:
            full_cfg = with_overrides(seed_cfg, {"train.max_epochs": args.max_epochs})
        res = train(full_cfg, seed_data, device="cpu", on_epoch=lambda r: print(
            f"epoch {r['epoch']} train {r['train_loss']:.4f} val {r['val_loss']:.4f} {r['seconds']:.1f}s", flush=True))
        out.update({"epochs": res.epochs, "best_epoch": res.best_epoch, "best_val_loss": round(res.best_val_loss, 5),
                    "stop_reason": res.stop_reason, "s_per_epoch": round(res.seconds / res.epochs, 2)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
