"""The Tune trainable, thin: trial dict → config → :func:`search.trial.run_trial` → report + checkpoint.

Reports (``report`` below is the ONE place that calls Ray's report API; Ray 2.60:
``ray.tune.report(metrics, checkpoint=ray.tune.Checkpoint)``):

* after every epoch: ``epoch, train_loss, val_loss, lr, seconds``, ``rung_lift`` (the best rung
  lift so far; ASHA reads it) with ``final = False`` and the objective keys (``score``,
  ``lift_vs_sticky``, ...) as NaN;
* once at the end: ``final = True``, the paired A/B metrics on the evaluation seed and ``score``,
  the serving the trial chose (``serving/policy``, ``serving/k``, ...), ``rung_lift_<epoch>`` per
  rung, with a checkpoint (:func:`search.experiment.save_trial`: model, lists, the config it is
  served with).

A trial ASHA stops never reaches its final report; :mod:`search.searcher` tells Optuna such a
trial was *pruned*, never complete with a partial score. A trial that raises (or whose training
goes NaN: ``model.train`` raises FloatingPointError) is marked errored by Tune; the search goes on.

Resumed after the driver died (``--resume``), a trial whose final result and checkpoint are already
on disk is not trained again: it re-reports the final metrics of that checkpoint (marked
``replayed``), found through ``tune.get_checkpoint()`` or, when Tune's snapshot predates the final
result, through the trial's own ``result.json``. An unfinished trial starts over.

On a cluster (``--max-failures``), a trial whose node dies is started again on another node by
Tune: its only checkpoint is its final one, so a trial lost while training starts over from its
first epoch, and one lost after its final report replays it (as above).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
from ray import tune

from model.config import ExperimentConfig
from sim_bridge.contract.files import from_dict, with_overrides

from search import data_cache, experiment
from search.trial import NAN, OBJECTIVE_KEYS, TrialInputs, TrialSetup, run_trial
from sim_bridge.policy_specs import needs_item_lists


def make_trainable(inputs: TrialInputs, setup: TrialSetup, base: ExperimentConfig, exp_dir: Path,
                   cpus: float, gpus: float):
    """The trainable with its inputs in Ray's object store (once) and its resources attached.

    ``base`` travels as a plain dict, rebuilt in the worker: a pickled dataclass instance breaks
    when the worker imports a newer ``ExperimentConfig`` (e.g. one that gained a field while a long
    search runs).
    """
    bound = tune.with_parameters(trainable, inputs=inputs, setup=setup, base=dataclasses.asdict(base),
                                 exp_dir=str(exp_dir), threads=max(1, int(cpus)))
    return tune.with_resources(bound, {"cpu": cpus, "gpu": gpus})


def trainable(config: dict, *, inputs: TrialInputs, setup: TrialSetup, base: dict, exp_dir: str | None = None,
              threads: int = 1) -> None:
    """The Tune function trainable (bound by :func:`make_trainable`)."""
    if _replay_final(exp_dir):
        return
    setup = on_this_node(setup)
    out = run_trial(trial_config(base, config, threads), inputs, setup, device=_device(), on_epoch=_report_epoch)
    item = out.lists.item if needs_item_lists(out.cfg.serving.policy) else None
    with tempfile.TemporaryDirectory() as tmp:
        experiment.save_trial(tmp, out.model, out.cfg, out.data, out.lists.user, item, metrics=out.metrics)
        report(out.metrics, checkpoint_dir=tmp)


def trial_config(base: dict[str, Any], config: dict[str, Any], threads: int) -> ExperimentConfig:
    """Lay the trial's dotted keys over the base; ``seed`` seeds training, threads = the CPUs held."""
    overrides = {k: v for k, v in config.items() if "." in k}
    cfg = with_overrides(from_dict(ExperimentConfig, base), overrides)
    seed = int(config.get("seed", cfg.train.seed))
    return replace(cfg, train=replace(cfg.train, seed=seed, num_threads=threads))


def on_this_node(setup: TrialSetup) -> TrialSetup:
    """``setup`` with the training-data cache of the node the trial runs on: the driver's folder
    may not exist here (another machine, another user), each node keeps its own under its
    ``$BOTIFY_TUNE_CACHE``."""
    if setup.data_cache is None:
        return setup
    return replace(setup, data_cache=str(data_cache.cache_dir()))


def report(metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
    """Report to Tune — the only call to Ray's report API in the project. Every report says which
    node it came from (``node_id``: a retried trial's reports name both nodes)."""
    checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
    tune.report({**metrics, "node_id": ray.get_runtime_context().get_node_id()}, checkpoint=checkpoint)


def _report_epoch(row: dict, rung_lift: float = NAN) -> None:
    metrics = {k: float(row[k]) for k in ("train_loss", "val_loss", "lr", "seconds", "data_cache_hit") if k in row}
    metrics["epoch"] = int(row["epoch"])
    if not math.isfinite(metrics.get("val_loss", 0.0)):
        raise FloatingPointError(f"val_loss is {metrics['val_loss']} at epoch {metrics['epoch']}")
    report({**metrics, **dict.fromkeys(OBJECTIVE_KEYS, NAN), "rung_lift": rung_lift, "final": False})


def _replay_final(exp_dir: str | None) -> bool:
    """Re-report a finished trial's final result from its checkpoint; False when it must train."""
    with contextlib.ExitStack() as stack:
        checkpoint = tune.get_checkpoint()
        folder = Path(stack.enter_context(checkpoint.as_directory())) if checkpoint else None
        if folder is None or experiment.final_metrics(folder) is None:
            folder = _finished_in_storage(exp_dir)
        if folder is None:
            return False
        report({**experiment.final_metrics(folder), "replayed": True}, checkpoint_dir=str(folder))
        return True


def _finished_in_storage(exp_dir: str | None) -> Path | None:
    """This trial's finished checkpoint under the experiment folder (when the driver can see it)."""
    if exp_dir is None or not Path(exp_dir).is_dir():
        return None
    trial_id = tune.get_context().get_trial_id()
    for trial_dir in Path(exp_dir).glob(f"*_{trial_id}_*"):
        found = experiment.finished_on_disk(trial_dir)
        if found is not None:
            return found
    return None


def _device() -> str:
    """cuda when this trial holds a GPU (Ray sets CUDA_VISIBLE_DEVICES for it), else cpu."""
    return "cuda" if ray.get_gpu_ids() else "cpu"
