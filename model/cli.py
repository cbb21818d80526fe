"""``python -m model.train``: train one configuration from botify logs and export it.

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
import json
import sys
import time
from pathlib import Path


from sim_bridge.atomic import atomic_dir, atomic_write_text, check_output_dir
from sim_bridge.catalog import CatalogError, read_catalog
from sim_bridge.configio import ConfigError, with_overrides
from sim_bridge.logs import read_logs
from sim_bridge.recfile import write_user_recs

from model.checkpoint import data_maps, save_checkpoint
from model.config import ExperimentConfig, load_experiment_config
from model.dssm import DSSM, count_parameters
from model.features import build_training_data
from model.infer import item_embeddings, recommend, write_item_embeddings
from model.train import train

class ModelError(ValueError):
    """A bad argument of ``python -m model.train``; the message names the flag."""


OUTPUTS = ("checkpoint.pt", "recommendations.json", "item_embeddings.npy", "item_ids.npy", "metrics.json")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n")[0])
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

    def progress(row: dict) -> None:
        print(f"epoch {row['epoch']:3d}  train {row['train_loss']:.5f}  val {row['val_loss']:.5f}  "
              f"lr {row['lr']:.2e}  {row['seconds']:.1f}s", flush=True)

    result = train(cfg, data, on_epoch=progress, device=args.device)
    t1 = time.perf_counter()
    recs = recommend(result.model, data, k=args.k, device=args.device)
    metrics = {
        "variant": args.variant, "parameters": count_parameters(result.model),
        "best_val_loss": result.best_val_loss, "best_epoch": result.best_epoch, "epochs": result.epochs,
        "stopped_early": result.stopped_early, "train_seconds": result.seconds,
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
