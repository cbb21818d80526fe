"""The training loop: a plain PyTorch loop in float32 (nanoGPT / optuna ``pytorch_simple`` style).

``train(cfg, data)`` → ``TrainResult`` with the best-epoch weights restored. Early stopping is a
small pure class (``EarlyStopping``) so tests can drive it with synthetic loss sequences; the LR
schedule is torch's ``ReduceLROnPlateau`` (``lr_schedulers``).

Speed: the user tower's EmbeddingBag has n_tracks + 1 rows (50,001 × D ≈ 96% of the weights).
A dense gradient makes every step zero, update and Adam-step all of it; with ``model.sparse_bag``
the bag (and the optional item-id and artist tables) get sparse gradients and
``model.lazy_adam.LazyAdam`` (SparseAdam's update with Adam's coupled L2 on the *touched* rows;
~16% faster epochs than torch's SparseAdam here), the rest plain Adam. That is lazy Adam, not
Adam: rows a batch does not touch neither decay nor coast on their momentum, which changes what a
weight-decayed model learns (the seed's variants train densely). See benchmarks/bench_train.py.

Command line, at the end of this module::

    python -m model.train --config configs/train.yaml [--variant NAME] --logs PATH
        [--catalog PATH] --out DIR [--device auto|cpu|cuda] [--seed S] [--force]
    python -m model.train --config configs/train.yaml [--variant NAME] --dry-run --n-tracks N

Writes into --out: checkpoint.pt, recommendations.json (botify JSON lines, top-100 per user),
item_embeddings.npy + item_ids.npy, metrics.json. The folder is written atomically (a temp folder
renamed into place); an existing non-empty --out is refused unless --force, which replaces it as a
whole. Bad input prints one line (``error: ...``) and exits 2, before any training.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import faiss
import numpy as np
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from sim_bridge.contract.catalog import CatalogError, read_catalog
from sim_bridge.contract.files import ConfigError, atomic_dir, atomic_write_text, check_output_dir, with_overrides
from sim_bridge.contract.logs import read_logs
from sim_bridge.contract.recs import write_user_recs

from model.checkpoint import data_maps, save_checkpoint
from model.config import ExperimentConfig, TrainConfig, load_experiment_config
from model.dssm import DSSM, build_model, count_parameters, resolve_device
from model.features import TrainingData, build_training_data, mask_history
from model.infer import item_embeddings, recommend, write_item_embeddings
from model.lazy_adam import LazyAdam

__all__ = ["TrainConfig", "TrainResult", "STOP_EARLY", "STOP_MAX_EPOCHS", "STOP_CALLBACK", "EarlyStopping",
           "lr_schedulers", "train", "resolve_device", "evaluate"]


class EarlyStopping:
    """Stop after ``patience`` epochs in a row without ``loss < best - min_delta``."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best = math.inf
        self.bad_epochs = 0

    def step(self, loss: float) -> bool:
        """Record one epoch's validation loss; True when training should stop."""
        if loss < self.best - self.min_delta:
            self.best, self.bad_epochs = loss, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs > 0 and self.bad_epochs >= self.patience


def lr_schedulers(opts: list[torch.optim.Optimizer], tc: TrainConfig) -> list[ReduceLROnPlateau]:
    """torch's ReduceLROnPlateau (mode min) on each optimiser — dense Adam and, with a sparse bag,
    LazyAdam — all stepped on the same validation loss, so they always share one LR."""
    return [ReduceLROnPlateau(opt, mode="min", factor=tc.lr_factor, patience=tc.lr_patience,
                              threshold=tc.lr_threshold, threshold_mode=tc.lr_threshold_mode, min_lr=tc.min_lr)
            for opt in opts]


# Why training ended (``TrainResult.stop_reason``). An ``after_epoch`` callback names its own reason
# (the search's rungs return "rung_plateau"); these two the loop decides by itself.
STOP_EARLY = "early_stopping"  # val loss: `patience` epochs in a row without beating the best by `min_delta`
STOP_MAX_EPOCHS = "max_epochs"  # ran to train.max_epochs (whatever else fired at that same epoch)
STOP_CALLBACK = "after_epoch"  # an after_epoch callback that returned True rather than a reason


@dataclass
class TrainResult:
    """The best model (weights of the lowest-val-loss epoch) and the run's record."""

    model: DSSM
    history: list[dict] = field(default_factory=list)  # one dict per epoch, as given to on_epoch
    best_val_loss: float = math.inf
    best_epoch: int = 0
    epochs: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    stop_reason: str = STOP_MAX_EPOCHS  # STOP_EARLY, STOP_MAX_EPOCHS or an after_epoch callback's reason

    @property
    def stopped_early(self) -> bool:
        """Ended before ``train.max_epochs`` (by early stopping or an ``after_epoch`` callback)."""
        return self.stop_reason != STOP_MAX_EPOCHS


class _Batches:
    """Triplet arrays and histories as tensors on the device; cuts grouped batches."""

    def __init__(self, data: TrainingData, device: torch.device):
        self.history = torch.as_tensor(data.history, dtype=torch.int64, device=device)  # [U, L]
        self.track1 = torch.as_tensor(data.track_ids + 1, dtype=torch.int64, device=device)  # [K]
        self.device = device

    def split(self, triplets: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(triplets, dtype=torch.int64, device=self.device)  # [n, 3]

    def batch(self, trip: torch.Tensor):
        """trip [B, 3] → arguments of ``DSSM.grouped_loss``."""
        user, pos, neg = trip[:, 0], trip[:, 1], trip[:, 2]
        users, inv = torch.unique(user, return_inverse=True)
        return self.history[users], inv, pos, neg, self.track1[pos], self.track1[neg]

    def reference_batch(self, trip: torch.Tensor):
        """trip [B, 3] → (history [B, L] with own pos/neg masked, pos, neg) for ``DSSM.forward``."""
        user, pos, neg = trip[:, 0], trip[:, 1], trip[:, 2]
        return mask_history(self.history[user], self.track1[pos], self.track1[neg]), pos, neg


def positive_runs(trip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, length) of each run of consecutive triplets sharing (user, positive) — [R] each."""
    key_change = (trip[1:, :2] != trip[:-1, :2]).any(1)
    starts = torch.cat([torch.zeros(1, dtype=torch.int64, device=trip.device),
                        key_change.nonzero().squeeze(1) + 1])
    lengths = torch.diff(torch.cat([starts, torch.tensor([len(trip)], device=trip.device)]))
    return starts, lengths


def grouped_permutation(starts: torch.Tensor, lengths: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random order of triplets that shuffles whole (user, positive) runs, keeping each together.

    A batch then holds ~B / n_negatives positives with their negatives, so the user bag and the
    positive's item tower are computed once per positive (``DSSM.grouped_loss``).
    """
    order = torch.randperm(len(starts), generator=gen).to(starts.device)
    s, n = starts[order], lengths[order]
    offsets = torch.cumsum(n, 0) - n  # where each run lands in the output
    within = torch.arange(int(n.sum()), device=starts.device) - torch.repeat_interleave(offsets, n)
    return torch.repeat_interleave(s, n) + within


def _optimizers(model: DSSM, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    sparse = model.sparse_parameters()
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    # fused: Adam's update of every dense tensor in one kernel (the same update as the default
    # per-op implementation; on a CPU thread about twice as fast for these many small tensors)
    opts: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                                          fused=True)]
    if sparse:
        opts.append(LazyAdam(sparse, lr=cfg.lr, weight_decay=cfg.weight_decay))
    return opts


class _PairBatches:
    """Session pairs on the device, cut into as many batches per epoch as the triplets are, each
    with one fresh negative per pair: ``uniform`` over the items (never the later item itself) or
    ``marginal``: the later item of another pair, so a negative is as popular as a positive on
    average and popularity alone cannot separate them (word2vec's negative sampling, ~ PMI)."""

    def __init__(self, data: TrainingData, device: torch.device, negatives: str = "marginal"):
        self.pairs = torch.as_tensor(data.pairs, dtype=torch.int64, device=device)  # [P, 2]
        self.time = torch.as_tensor(data.pair_time, dtype=torch.float32, device=device)  # [P]
        self.n_items, self.negatives = data.n_items, negatives

    def __len__(self) -> int:
        return len(self.pairs)

    def epoch(self, n_batches: int, gen: torch.Generator) -> list[tuple[torch.Tensor, ...]]:
        """``n_batches`` (first, later, neg, weight) batches covering every pair once, shuffled."""
        order = torch.randperm(len(self.pairs), generator=gen).to(self.pairs.device)
        pairs, time = self.pairs[order], self.time[order]
        if self.negatives == "marginal":
            neg = self.pairs[torch.randperm(len(self.pairs), generator=gen).to(self.pairs.device), 1]
        else:
            shift = torch.randint(1, self.n_items, (len(self.pairs),), generator=gen).to(self.pairs.device)
            neg = (pairs[:, 1] + shift) % self.n_items
        return [(pairs[chunk, 0], pairs[chunk, 1], neg[chunk], time[chunk])
                for chunk in torch.arange(len(pairs), device=pairs.device).tensor_split(n_batches)]


def _train_epoch(model, opts, batches: _Batches, train_t: torch.Tensor, runs, cfg: TrainConfig,
                 gen: torch.Generator, pairs: _PairBatches | None = None) -> tuple[float, float]:
    """One pass over the triplets (and, with ``pairs``, over the session pairs alongside):
    (mean triplet loss, mean pair loss — NaN without pairs)."""
    model.train()
    perm = grouped_permutation(*runs, gen)
    starts = range(0, len(perm), cfg.batch_size)
    pair_batches = pairs.epoch(len(starts), gen) if pairs else None
    total = torch.zeros((), device=train_t.device)
    pair_total = torch.zeros((), device=train_t.device)
    for b, start in enumerate(starts):
        trip = train_t[perm[start:start + cfg.batch_size]]
        loss = model.grouped_loss(*batches.batch(trip))
        total += loss.detach() * len(trip)
        if pair_batches:
            pair_loss = model.pair_loss(*pair_batches[b])
            pair_total += pair_loss.detach() * len(pair_batches[b][0])
            loss = loss + cfg.pair_weight * pair_loss
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in opts:
            opt.step()
    pair_mean = float(pair_total) / len(pairs) if pairs else math.nan
    return float(total) / max(1, len(train_t)), pair_mean


@torch.no_grad()
def evaluate(model: DSSM, batches: _Batches, triplets: torch.Tensor, batch_size: int) -> float:
    """Mean triplet loss over ``triplets`` (no gradients)."""
    model.eval()
    total = 0.0
    for start in range(0, len(triplets), batch_size):
        trip = triplets[start:start + batch_size]
        total += float(model.grouped_loss(*batches.batch(trip))) * len(trip)
    return total / max(1, len(triplets))


def train(cfg: ExperimentConfig, data: TrainingData, on_epoch: Callable[[dict], None] | None = None,
          device: str = "auto", after_epoch: Callable[[dict, DSSM], bool | str | None] | None = None) -> TrainResult:
    """Train a DSSM on ``data``; ``on_epoch`` gets {epoch, train_loss, val_loss, lr, seconds}.

    ``after_epoch(row, model)`` (the search's rungs) may look at the model after each epoch; when
    it returns a reason (a non-empty string, e.g. ``"rung_plateau"``) or True, training stops
    there. Early stopping on the validation loss (``train.patience``, ``train.min_delta``) is
    consulted after it, with or without a callback. ``stop_reason`` records which ended training:
    the callback's reason (``STOP_CALLBACK`` for a bare True), ``STOP_EARLY``, or ``STOP_MAX_EPOCHS``
    — also when something else fired at the last epoch anyway. Exceptions from either callback
    propagate (the search uses that to stop a trial). A NaN or infinite loss raises
    ``FloatingPointError``. Deterministic on CPU for a given ``train.seed``.
    """
    tc = cfg.train
    if tc.num_threads:  # torch's threads, and faiss's (OpenMP) for the nearest-neighbour lists
        torch.set_num_threads(tc.num_threads)
        faiss.omp_set_num_threads(tc.num_threads)
    dev = resolve_device(device)
    torch.set_flush_denormal(True)  # tiny LRs late in training otherwise slow CPU steps many-fold
    torch.manual_seed(tc.seed)  # weight init
    gen = torch.Generator().manual_seed(tc.seed)  # batch order
    model = build_model(cfg.model, data).to(dev)
    opts = _optimizers(model, tc)
    batches = _Batches(data, dev)
    train_t, val_t = batches.split(data.train), batches.split(data.val)
    runs = positive_runs(train_t)
    pairs = _PairBatches(data, dev, tc.pair_negatives) if len(data.pairs) and tc.pair_weight > 0 else None
    stopper = EarlyStopping(tc.patience, tc.min_delta)
    scheds = lr_schedulers(opts, tc)
    result = TrainResult(model=model, device=str(dev))
    best_state, lr, t0 = None, tc.lr, time.perf_counter()
    for epoch in range(1, tc.max_epochs + 1):
        t_epoch = time.perf_counter()
        train_loss, pair_loss = _train_epoch(model, opts, batches, train_t, runs, tc, gen, pairs)
        val_loss = evaluate(model, batches, val_t, tc.eval_batch_size)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise FloatingPointError(f"loss is not finite at epoch {epoch}: train {train_loss}, val {val_loss}")
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
               "seconds": time.perf_counter() - t_epoch}
        if pairs:
            row["pair_loss"] = pair_loss
        result.history.append(row)
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        if on_epoch is not None:
            on_epoch(dict(row))
        result.epochs = epoch
        said = after_epoch(dict(row), model) if after_epoch is not None else None
        if said:  # the callback's reason (the stopper is not stepped: training ends here anyway)
            reason = said if isinstance(said, str) else STOP_CALLBACK
        else:
            reason = STOP_EARLY if stopper.step(val_loss) else None
        if reason:
            result.stop_reason = reason if epoch < tc.max_epochs else STOP_MAX_EPOCHS
            break
        for sched in scheds:
            sched.step(val_loss)
        lr = opts[0].param_groups[0]["lr"]
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- the command line
# ``python -m model.train`` runs this module; the CLI lives here (not in a module of its own that
# would import the loop back) because training one configuration is all it does.

CLI_DESCRIPTION = "train one configuration from botify logs and export it"


class ModelError(ValueError):
    """A bad argument of ``python -m model.train``; the message names the flag."""


OUTPUTS = ("checkpoint.pt", "recommendations.json", "item_embeddings.npy", "item_ids.npy", "metrics.json")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.train", description=CLI_DESCRIPTION)
    p.add_argument("--config", required=True, help="experiment YAML (features/model/train)")
    p.add_argument("--variant", help="a name under variants: in seed_variants.yaml beside --config")
    p.add_argument("--logs", help="botify logs (JSON lines or Parquet)")
    p.add_argument("--catalog", help="tracks.json (default: tracks.json beside --logs)")
    p.add_argument("--out", help="output folder (must be empty unless --force)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--seed", type=int, help="sets features.seed and train.seed")
    p.add_argument("--k", type=int, default=100, help="recommendations per user")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out folder as a whole")
    p.add_argument("--dry-run", action="store_true", help="build the model, print its size, no data")
    p.add_argument("--n-tracks", type=int, default=50_000, help="catalog size for --dry-run")
    p.add_argument("--n-items", type=int, help="kept tracks for --dry-run (default: --n-tracks)")
    p.add_argument("--n-genres", type=int, default=20, help="genres for --dry-run")
    return p.parse_args(argv)


def dry_run(cfg: ExperimentConfig, args: argparse.Namespace) -> int:
    n_items = args.n_items or args.n_tracks
    model = DSSM(cfg.model, args.n_tracks, n_items, args.n_genres)
    print(json.dumps({"parameters": count_parameters(model), "n_tracks": args.n_tracks,
                      "n_items": n_items, "n_genres": args.n_genres}))
    return 0


def check_args(args: argparse.Namespace) -> None:
    """Flags argparse cannot check by type alone (before any data is read)."""
    if args.k < 1:
        raise ModelError(f"--k must be >= 1, got {args.k}")
    for flag in ("n_tracks", "n_items", "n_genres"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ModelError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")


def print_epoch(row: dict, **_) -> None:
    """One line per epoch (an ``on_epoch`` callback): losses, learning rate, seconds."""
    print(f"epoch {row['epoch']:3d}  train {row['train_loss']:.5f}  val {row['val_loss']:.5f}  "
          f"lr {row['lr']:.2e}  {row['seconds']:.1f}s", flush=True)


def run(cfg: ExperimentConfig, args: argparse.Namespace) -> int:
    if not args.logs or not args.out:
        raise ConfigError("--logs and --out are required unless --dry-run")
    logs, out = Path(args.logs), Path(args.out)
    catalog_path = Path(args.catalog) if args.catalog else logs.parent / "tracks.json"
    for what, path in (("--logs", logs), ("catalog", catalog_path)):
        if not path.is_file():
            raise FileNotFoundError(f"{what}: no such file {path}")
    check_output_dir(out, args.force)
    t0 = time.perf_counter()
    data = build_training_data(read_logs(logs), read_catalog(catalog_path), cfg.features)
    t_data = time.perf_counter() - t0
    print(f"data: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test triplets, "
          f"{data.n_items} items, {len(data.user_ids)} users ({t_data:.1f}s)", flush=True)

    result = train(cfg, data, on_epoch=print_epoch, device=args.device)
    t1 = time.perf_counter()
    recs = recommend(result.model, data, k=args.k, device=args.device)
    metrics = {
        "variant": args.variant, "parameters": count_parameters(result.model),
        "best_val_loss": result.best_val_loss, "best_epoch": result.best_epoch, "epochs": result.epochs,
        "stopped_early": result.stopped_early, "stop_reason": result.stop_reason, "train_seconds": result.seconds,
        "data_seconds": t_data, "recommend_seconds": time.perf_counter() - t1, "device": result.device,
        "n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test),
        "n_items": data.n_items, "n_users": len(data.user_ids), "history": result.history,
    }
    with atomic_dir(out, force=args.force) as tmp:
        save_checkpoint(tmp / "checkpoint.pt", result.model, cfg, data_maps(data))
        write_user_recs(recs, tmp / "recommendations.json")
        write_item_embeddings(tmp, item_embeddings(result.model, data, args.device), data.track_ids)
        atomic_write_text(tmp / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(f"best val {result.best_val_loss:.5f} at epoch {result.best_epoch}/{result.epochs}, "
          f"{result.seconds:.1f}s train; wrote {', '.join(OUTPUTS)} to {out}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_args(args)
        cfg = load_experiment_config(args.config, args.variant)
        if args.seed is not None:
            cfg = with_overrides(cfg, {"features.seed": args.seed, "train.seed": args.seed})
        return dry_run(cfg, args) if args.dry_run else run(cfg, args)
    except (ConfigError, CatalogError, FileNotFoundError, FileExistsError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
