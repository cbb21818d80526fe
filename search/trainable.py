"""The Tune trainable, thin: trial dict → configs → train (report per epoch, rungs) → serve → A/B.

Reports (``report`` below is the ONE place that calls Ray's report API; Ray 2.60:
``ray.tune.report(metrics, checkpoint=ray.tune.Checkpoint)``):

* after every epoch: ``epoch, train_loss, val_loss, lr, seconds``, ``rung_lift`` (the best rung
  lift so far, :mod:`search.rungs`; ASHA reads it) with ``final = False`` and the objective keys
  (``score``, ``lift_vs_sticky``, ...) as NaN;
* once at the end: ``final = True``, the paired A/B metrics on the evaluation seed and ``score``,
  the serving the trial chose (``serving/policy``, ``serving/k``, ... :mod:`search.serving_tuner`),
  ``rung_lift_<epoch>`` per rung, with a checkpoint (model, lists, the config it is served with).

A trial ASHA stops never reaches its final report; :mod:`search.searcher` tells Optuna such a
trial was *pruned*, never complete with a partial score. A trial that raises (or whose training
goes NaN: ``model.train`` raises FloatingPointError) is marked errored by Tune; the search goes on.

Resumed after the driver died (``--resume``), a trial whose final result and checkpoint are already
on disk is not trained again: it re-reports the final metrics of that checkpoint (marked
``replayed``), found through ``tune.get_checkpoint()`` or, when Tune's snapshot predates the final
result, through the trial's own ``result.json``. An unfinished trial starts over.
"""
from __future__ import annotations

import contextlib
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import ray
from ray import tune

from model.config import ExperimentConfig
from model.features import TrainingData
from model.train import train
from sim_bridge.contract.files import from_dict, with_overrides
from sim_bridge.simulator import Simulator
from sim_bridge.world import World

from search import artifacts
from search.config import EvalConfig, ObjectiveConfig, RungConfig, ServingSearchConfig
from search.data_cache import training_data
from sim_bridge.abtest import OBJECTIVE_KEYS, paired_eval, score
from search.rungs import RungWatcher
from sim_bridge.policies import needs_item_lists, serving_policy
from search.serving_tuner import Lists, ServingTuner, model_lists, serving_metrics

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
    exp_dir: str | None = None  # the experiment folder, where a resumed trial looks for its final result
    rungs: RungConfig | None = None  # None: no rungs (multi-fidelity off), train to the end
    serving_search: ServingSearchConfig | None = None  # None: serve as the config says
    data_cache: str | None = None  # folder of the per-features.* training-data cache
    logs_digest: str | None = None


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


@dataclass
class TrialOutcome:
    """A trained and served trial: the model, its config as served, its lists and final metrics."""

    model: Any
    cfg: ExperimentConfig
    data: TrainingData
    lists: Lists
    metrics: dict[str, Any]


def run_trial(config: dict, *, world: World, data: TrainingData | None, events: pd.DataFrame | None,
              control: pd.DataFrame, setup: TrialSetup, rung_control: pd.DataFrame | None = None,
              tuning_control: pd.DataFrame | None = None, simulator: Simulator | None = None) -> None:
    """The Tune function trainable (bound with ``tune.with_parameters``)."""
    if _replay_final(setup):
        return
    cfg = trial_config(setup.base, config, setup.cpus_per_trial)
    out = train_and_serve(cfg, world, data, events, control, setup, rung_control, tuning_control, simulator,
                          device=_device(), on_epoch=_report_epoch)
    item = out.lists.item if needs_item_lists(out.cfg.serving.policy) else None
    with tempfile.TemporaryDirectory() as tmp:
        artifacts.save_trial(tmp, out.model, out.cfg, out.data, out.lists.user, item, metrics=out.metrics)
        report(out.metrics, checkpoint_dir=tmp)


def train_and_serve(cfg: ExperimentConfig, world: World, data: TrainingData | None, events: pd.DataFrame | None,
                    control: pd.DataFrame, setup: TrialSetup, rung_control: pd.DataFrame | None = None,
                    tuning_control: pd.DataFrame | None = None, simulator: Simulator | None = None,
                    device: str = "cpu", on_epoch: Callable[..., None] | None = None) -> TrialOutcome:
    """One trial without Ray: data → train (rungs) → serving search → paired A/B on the eval seed.

    ``on_epoch(row, rung_lift=...)`` gets every epoch (the trainable reports it to Tune).
    """
    if data is None:  # the search samples features.*: this trial's data is its own
        data = training_data(events, world.catalog, cfg.features, setup.data_cache, setup.logs_digest)
    simulator = simulator or Simulator(world)
    watcher = _watcher(setup, simulator, rung_control, data, cfg, device)
    report_epoch = on_epoch or (lambda row, rung_lift=NAN: None)
    result = train(cfg, data, on_epoch=None if watcher else report_epoch, device=device,
                   after_epoch=_rung_hook(watcher, report_epoch) if watcher else None)
    if watcher:
        watcher.restore_best(result.model)
    serving, tuned, lists = cfg.serving, {}, None
    if setup.serving_search is not None and tuning_control is not None:
        tuner = ServingTuner(setup.serving_search, simulator, tuning_control, setup.serving_search.seed)
        lists = tuner.lists(result.model, data, device, cfg.serving.k)
        choice = tuner.search(lists, watcher.serving if watcher else cfg.serving)
        serving, tuned = choice.serving, serving_metrics(choice)
    cfg = replace(cfg, serving=serving)  # the trial is saved, exported and confirmed as served
    if lists is None or lists.user is None or (needs_item_lists(serving.policy) and lists.item is None):
        lists = model_lists(result.model, data, serving.k, ["indexed", serving.policy], device)
    lists = lists.truncated(serving.k)
    policy = serving_policy(cfg.serving, world.catalog, lists.user, lists.item)
    metrics = paired_eval(world, control, policy, setup.eval.seed, simulator)
    metrics.update(_final_training_metrics(result), **tuned, **(watcher.metrics() if watcher else {}))
    metrics["rung_lift"] = watcher.best_lift if watcher and watcher.lifts else NAN  # the scheduler's metric
    metrics["val_loss_rel"] = metrics["val_loss"] / cfg.model.margin
    metrics["score"] = score(metrics["lift_vs_sticky"], metrics["val_loss_rel"], setup.objective)
    _check_finite(metrics)
    return TrialOutcome(result.model, cfg, data, lists, metrics)


def _watcher(setup: TrialSetup, simulator, rung_control, data, cfg, device) -> RungWatcher | None:
    if setup.rungs is None or rung_control is None:
        return None
    search = setup.serving_search or ServingSearchConfig(policies=[cfg.serving.policy], knobs={})
    tuner = ServingTuner(search, simulator, rung_control, setup.rungs.seed)
    return RungWatcher(setup.rungs, tuner, data, cfg.serving, device)


def _rung_hook(watcher: RungWatcher, report_epoch: Callable[..., None]):
    """After each epoch: measure a rung (at rung epochs), report, say whether to stop."""
    def hook(row: dict, model) -> bool:
        watcher.observe(int(row["epoch"]), model)
        report_epoch(row, rung_lift=watcher.best_lift if watcher.lifts else NAN)
        return watcher.plateaued()
    return hook


def _replay_final(setup: TrialSetup) -> bool:
    """Re-report a finished trial's final result from its checkpoint; False when it must train."""
    with contextlib.ExitStack() as stack:
        checkpoint = tune.get_checkpoint()
        folder = Path(stack.enter_context(checkpoint.as_directory())) if checkpoint else None
        if folder is None or artifacts.final_metrics(folder) is None:
            folder = _finished_in_storage(setup.exp_dir)
        if folder is None:
            return False
        report({**artifacts.final_metrics(folder), "replayed": True}, checkpoint_dir=str(folder))
        return True


def _finished_in_storage(exp_dir: str | None) -> Path | None:
    """This trial's finished checkpoint under the experiment folder (when the driver can see it)."""
    if exp_dir is None or not Path(exp_dir).is_dir():
        return None
    trial_id = tune.get_context().get_trial_id()
    for trial_dir in Path(exp_dir).glob(f"*_{trial_id}_*"):
        found = artifacts.finished_on_disk(trial_dir)
        if found is not None:
            return found
    return None


def _report_epoch(row: dict, rung_lift: float = NAN) -> None:
    metrics = {k: float(row[k]) for k in ("train_loss", "val_loss", "lr", "seconds") if k in row}
    metrics["epoch"] = int(row["epoch"])
    if not math.isfinite(metrics.get("val_loss", 0.0)):
        raise FloatingPointError(f"val_loss is {metrics['val_loss']} at epoch {metrics['epoch']}")
    report({**metrics, **dict.fromkeys(OBJECTIVE_KEYS, NAN), "rung_lift": rung_lift, "final": False})


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
