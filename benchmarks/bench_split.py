"""What the validation split does to the validation loss and to early stopping.

    .venv/bin/python benchmarks/bench_split.py [--epochs 6] [--threads 1] [--smoke]

Trains the card's default trial (the search's base config with its overrides) on the default
logs once per ``features.split`` — ``random`` (the seminar's triplet permutation) and ``time``
(each user's latest positives held out, histories and co-occurrence from the events before
them) — for ``--epochs`` epochs with early stopping off, and prints each epoch's train and
validation loss. Then it replays early stopping over each validation curve with the search's
patience for every ``train.min_delta`` of the search space: the epoch training would have ended
at, and whether that value of min_delta changed anything. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim_bridge.contract.files import with_overrides  # noqa: E402

from model.features import SPLITS, build_training_data  # noqa: E402
from model.train import EarlyStopping, train  # noqa: E402
from search.config import load_search_config, parse_benchmark_args, search_defaults  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def min_deltas() -> list[float]:
    """The values of ``train.min_delta`` the search samples (a choice in configs/search.yaml)."""
    return list(load_search_config(REPO / "configs" / "search.yaml").space["train.min_delta"]["values"])


def stop_epoch(val_losses: list[float], patience: int, min_delta: float) -> int:
    """The epoch at which early stopping (patience, min_delta) would end training on this curve."""
    stopper = EarlyStopping(patience, min_delta)
    for epoch, loss in enumerate(val_losses, start=1):
        if stopper.step(loss):
            return epoch
    return len(val_losses)


def curves(args, split: str) -> dict:
    from sim_bridge.contract.catalog import read_catalog
    from sim_bridge.contract.logs import read_logs
    from sim_bridge.defaults import ensure_default_logs, ensure_smoke_logs

    _, base = search_defaults(args.smoke, args.threads)
    cfg = with_overrides(base, {"features.split": split, "train.max_epochs": args.epochs,
                                "train.patience": args.epochs + 1})
    logs = ensure_smoke_logs() if args.smoke else ensure_default_logs()
    data = build_training_data(read_logs(logs), read_catalog(logs.parent / "tracks.json"), cfg.features)
    result = train(cfg, data, device="cpu", on_epoch=lambda r: print(
        f"  {split:<6} epoch {r['epoch']}  train {r['train_loss']:.4f}  val {r['val_loss']:.4f}  "
        f"{r['seconds']:.1f}s", flush=True))
    val = [row["val_loss"] for row in result.history]
    return {"train": [round(row["train_loss"], 5) for row in result.history], "val": [round(v, 5) for v in val],
            "best_epoch": result.best_epoch, "patience": base.train.patience}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="the tiny world's logs, configs/smoke.yaml's epochs")
    args = parse_benchmark_args(p, "bench_split")
    out = {}
    for split in SPLITS:
        fig = curves(args, split)
        fig["stop_epoch_by_min_delta"] = {str(d): stop_epoch(fig["val"], fig["patience"], d)
                                          for d in min_deltas()}
        out[split] = fig
    print(f"\n{'split':<8}{'best epoch':>11}  stop epoch at each min_delta (patience {out['time']['patience']})")
    for split, fig in out.items():
        stops = "  ".join(f"{d}: {e}" for d, e in fig["stop_epoch_by_min_delta"].items())
        print(f"{split:<8}{fig['best_epoch']:>11}  {stops}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
