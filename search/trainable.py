"""The Tune trainable, thin: trial dict → configs → train (report per epoch) → recommend → A/B.

Reports (``report`` below is the ONE place that calls Ray's report API; Ray 2.60:
``ray.tune.report(metrics, checkpoint=ray.tune.Checkpoint)``):

* after every epoch: ``epoch, train_loss, val_loss, lr, seconds`` with ``final = False`` and the
  objective keys (``score``, ``lift_vs_sticky``, ...) as NaN — ASHA reads ``val_loss`` here;
* once at the end: ``final = True``, ``val_loss`` = the best validation loss, the paired A/B
  metrics and ``score``, with a checkpoint (model, recommendations, item embeddings).

A trial ASHA stops never reaches its final report; :mod:`search.searcher` tells Optuna such a
trial was *pruned*, never complete with a partial score. A trial that raises (or whose training
goes NaN: ``model.train`` raises FloatingPointError) is marked errored by Tune; the search goes on.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import ray
from ray import tune

from model.config import ExperimentConfig
from model.features import TrainingData, build_training_data
from model.infer import item_recommendations, recommend
from model.train import train
from sim_bridge.configio import from_dict, with_overrides
from sim_bridge.world import World

from search import artifacts
from search.config import EvalConfig, ObjectiveConfig
from search.evaluate import OBJECTIVE_KEYS, paired_eval, score
from search.serving import serving_policy

NAN = float("nan")


@dataclass(frozen=True)
class TrialSetup:
    """What every trial shares besides the big inputs (all picklable).

    ``base`` is the base config as a plain dict (``dataclasses.asdict``), rebuilt in the worker:
    a pickled dataclass instance breaks when the worker imports a newer ``ExperimentConfig``
    (e.g. one that gained a field while a long search runs).
    """

    base: dict[str, Any]
    eval: EvalConfig
    objective: ObjectiveConfig
    cpus_per_trial: int = 1


def report(metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
    """Report to Tune — the only call to Ray's report API in the project."""
    checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
    tune.report(metrics, checkpoint=checkpoint)


def trial_config(base: dict[str, Any], config: dict[str, Any], cpus: int) -> ExperimentConfig:
    """Lay the trial's dotted keys over the base; ``seed`` seeds training, threads = the CPUs held."""
    overrides = {k: v for k, v in config.items() if "." in k}
    cfg = with_overrides(from_dict(ExperimentConfig, base), overrides)
    seed = int(config.get("seed", cfg.train.seed))
    return replace(cfg, train=replace(cfg.train, seed=seed, num_threads=max(1, int(cpus))))


def run_trial(config: dict, *, world: World, data: TrainingData | None, events: pd.DataFrame | None,
              control: pd.DataFrame, setup: TrialSetup) -> None:
    """The Tune function trainable (bound with ``tune.with_parameters``)."""
    cfg = trial_config(setup.base, config, setup.cpus_per_trial)
    if data is None:  # the search samples features.*: this trial's data is its own
        data = build_training_data(events, world.catalog, cfg.features)
    device = _device()
    result = train(cfg, data, on_epoch=_report_epoch, device=device)
    recs = recommend(result.model, data, k=cfg.serving.k, device=device)
    item_recs = item_recommendations(result.model, data, k=cfg.serving.k, device=device) \
        if cfg.serving.needs_item_lists else None
    policy = serving_policy(cfg.serving, world.catalog, recs, item_recs)
    metrics = paired_eval(world, control, policy, setup.eval.seed)
    metrics.update(_final_training_metrics(result))
    metrics["val_loss_rel"] = metrics["val_loss"] / cfg.model.margin
    metrics["score"] = score(metrics["lift_vs_sticky"], metrics["val_loss_rel"], setup.objective)
    _check_finite(metrics)
    with tempfile.TemporaryDirectory() as tmp:
        artifacts.save_trial(tmp, result.model, cfg, data, recs, item_recs)
        report(metrics, checkpoint_dir=tmp)


def _report_epoch(row: dict) -> None:
    metrics = {k: float(row[k]) for k in ("train_loss", "val_loss", "lr", "seconds") if k in row}
    metrics["epoch"] = int(row["epoch"])
    if not math.isfinite(metrics.get("val_loss", 0.0)):
        raise FloatingPointError(f"val_loss is {metrics['val_loss']} at epoch {metrics['epoch']}")
    report({**metrics, **dict.fromkeys(OBJECTIVE_KEYS, NAN), "final": False})


def _final_training_metrics(result) -> dict:
    return {
        "val_loss": float(result.best_val_loss),
        "train_loss": float(result.history[-1]["train_loss"]) if result.history else NAN,
        "epoch": int(result.epochs),
        "train_seconds": float(result.seconds),
        "stopped_early": bool(result.stopped_early),
        "device": str(result.device),
        "final": True,
    }


def _check_finite(metrics: dict) -> None:
    bad = [k for k in ("val_loss", *OBJECTIVE_KEYS) if not math.isfinite(metrics[k])]
    if bad:
        raise FloatingPointError(f"trial metrics not finite: {', '.join(bad)}")


def _device() -> str:
    """cuda when this trial holds a GPU (Ray sets CUDA_VISIBLE_DEVICES for it), else cpu."""
    return "cuda" if ray.get_gpu_ids() else "cpu"
