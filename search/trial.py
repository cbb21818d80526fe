"""One trial, without Ray: config → training data → train (rungs) → serving search → paired A/B.

:func:`run_trial` is the search's whole trial pipeline; the Tune trainable (:mod:`search.trainable`)
adds only Ray's reporting and checkpoints around it, and ``search.seed_table``, ``search.calibrate``
and the benchmarks call it as it is. Its options:

* **rungs** (``setup.rungs``, :mod:`search.rungs`): the model served on a rung seed's sessions
  after some epochs; the trial stops when that *rung lift* stops improving and keeps the weights
  of its best rung;
* **in-trial serving search** (``setup.serving_search``, :mod:`search.serving_search`): after
  training, the serving chosen by simulation on sessions of its own seed;
* **the paired A/B** on the evaluation seed when ``inputs.control`` is given (common random
  numbers: same users, session starts and per-step draws under both policies; docs/ab_test.md),
  with ``score`` from the objective weights. Without a control the trial stops after choosing its
  serving (``search.seed_table`` runs its own unpaired A/B on the policy).

Training data is built once per distinct ``features.*`` setting: shared in ``inputs.data``, or, when
the search samples ``features.*`` keys, through the on-disk cache of :mod:`search.data_cache`; then
every report says whether it came from the cache (``data_cache_hit``: 1.0 a hit, 0.0 a miss).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace
from typing import Any, Callable

import pandas as pd

from model.config import ExperimentConfig
from model.features import FeatureConfig, TrainingData, build_training_data
from model.train import train
from sim_bridge.abtest import paired_eval
from sim_bridge.policies import Policy, StickyArtist
from sim_bridge.policy_specs import needs_item_lists, serving_policy
from sim_bridge.simulator import Simulator
from sim_bridge.world import World

from search.cache_bound import bound_bytes
from search.config import EvalConfig, ObjectiveConfig, RungConfig, ServingSearchConfig
from search.data_cache import training_data
from search.rungs import RungWatcher
from search.serving_search import Lists, ServingTuner, model_lists, serving_metrics


# Every report carries these keys (NaN until the trial's final report), so the scheduler and the
# searcher always find the metric they read.
OBJECTIVE_KEYS = ("time_per_session", "lift_vs_sticky", "lift_lower", "lift_upper", "val_loss_rel", "score")


def score(lift_vs_sticky: float, val_loss_rel: float, weights: ObjectiveConfig) -> float:
    """``lift_weight * lift(%) - val_loss_weight * val_loss / margin``: higher is better.

    ``weights``: the search's objective settings (``lift_weight``, ``val_loss_weight``).

    The lift is what the service is for; the validation loss is a small, noise-free tie-breaker.
    It enters divided by the triplet margin: the raw triplet loss scales with the margin (a
    collapsed model scores exactly ``margin``), so with ``model.margin`` in the space a raw
    val_loss term would reward small margins rather than better models. ``val_loss / margin``
    is 1.0 for a collapsed model and 0 when every validation triplet clears the margin.
    """
    value = weights.lift_weight * lift_vs_sticky - weights.val_loss_weight * val_loss_rel
    if not math.isfinite(value):
        raise FloatingPointError(f"score is not finite (lift={lift_vs_sticky}, val_loss_rel={val_loss_rel})")
    return float(value)


NAN = float("nan")


@dataclass(frozen=True)
class TrialSetup:
    """The trial's options, the same for every trial of a search (all picklable)."""

    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)  # used when the inputs hold a control
    objective: ObjectiveConfig = dataclasses.field(default_factory=ObjectiveConfig)
    rungs: RungConfig | None = None  # None: no rungs (multi-fidelity off), train to the end
    serving_search: ServingSearchConfig | None = None  # None: serve as the config says
    data_cache: str | None = None  # folder of the per-features.* training-data cache
    source_digest: str | None = None  # of the logs and the catalog the training data is built from
    # the cache's bound in bytes: $BOTIFY_TUNE_CACHE_GB where the setup is made (the driver, before Ray)
    data_cache_bytes: int = dataclasses.field(default_factory=bound_bytes)


@dataclass
class TrialInputs:
    """What every trial reads, prepared once (a search puts it in Ray's object store once).

    ``data`` is the shared training data, or None when each trial builds its own from ``events``;
    the controls are sticky_artist's sessions on the evaluation, rung and serving-search seeds;
    the simulator's per-world start table is built once, not once a trial.
    """

    world: World
    data: TrainingData | None
    events: pd.DataFrame | None
    control: pd.DataFrame | None
    rung_control: pd.DataFrame | None = None
    tuning_control: pd.DataFrame | None = None
    simulator: Simulator | None = None


def prepare(world: World, events: pd.DataFrame, setup: TrialSetup, features: FeatureConfig | None) -> TrialInputs:
    """Simulate the controls once; build the training data once unless ``features`` is None
    (then each trial builds its own from the events)."""
    simulator = Simulator(world)
    sticky = StickyArtist(world.catalog)

    def control(sessions: int, seed: int) -> pd.DataFrame:
        return simulator.run(sticky, sessions, seed).sessions

    return TrialInputs(
        world, None if features is None else build_training_data(events, world.catalog, features),
        events if features is None else None, control(setup.eval.sessions, setup.eval.seed),
        control(setup.rungs.sessions, setup.rungs.seed) if setup.rungs else None,
        control(setup.serving_search.sessions, setup.serving_search.seed) if setup.serving_search else None,
        simulator)


@dataclass
class TrialOutcome:
    """A trained and served trial: the model, its config as served, its lists (every per-track list
    computed, when the policy reads them; else none), policy and metrics."""

    model: Any
    cfg: ExperimentConfig
    data: TrainingData
    lists: "Lists"
    policy: Policy
    metrics: dict[str, Any]


def run_trial(cfg: ExperimentConfig, inputs: TrialInputs, setup: TrialSetup, device: str = "cpu",
              on_epoch: Callable[..., None] | None = None) -> TrialOutcome:
    """Train ``cfg`` (with rungs), choose its serving, A/B it when ``inputs.control`` is given.

    ``on_epoch(row, rung_lift=...)`` gets every epoch (the trainable reports it to Tune).
    """
    data, cache_metrics = _data(cfg, inputs, setup)
    simulator = inputs.simulator or Simulator(inputs.world)
    watcher = _watcher(setup, simulator, inputs.rung_control, data, cfg, device)
    report_epoch = _with_metrics(on_epoch or (lambda row, rung_lift=NAN: None), cache_metrics)
    result = train(cfg, data, on_epoch=None if watcher else report_epoch, device=device,
                   after_epoch=_rung_hook(watcher, report_epoch) if watcher else None)
    # the best rung's weights, and its lists (those it computed are not computed again)
    lists = watcher.restore_best(result.model) if watcher else None
    serving, metrics = cfg.serving, {**_training_metrics(result), **cache_metrics}
    if setup.serving_search is not None and inputs.tuning_control is not None:
        tuner = ServingTuner(setup.serving_search, simulator, inputs.tuning_control, setup.serving_search.seed)
        lists = tuner.lists(result.model, data, device, cfg.serving.k, have=lists)
        # the search's policies read most lists (contextual, botify_i2i) and the checkpoint saves
        # them all: computed in one batch, faster a list than as read (see docs/results.md)
        lists = lists.compute_all()
        # from the config's serving, not the rungs' choice: the final choice depends on the weights
        # and the lists only (the rungs served the start's serving, or chose on fewer sessions)
        choice = tuner.search(lists, cfg.serving)
        serving = choice.serving
        metrics.update(serving_metrics(choice))
    cfg = replace(cfg, serving=serving)  # the trial is saved, exported and confirmed as served
    if not _serves(lists, serving):
        lists = model_lists(result.model, data, serving.k, ["indexed", serving.policy], device, have=lists)
    lists = lists.truncated(serving.k)
    policy = serving_policy(serving, inputs.world.catalog, lists.user, lists.item)
    if watcher:
        metrics.update(watcher.metrics())
    metrics["rung_lift"] = watcher.best_lift if watcher and watcher.lifts else NAN  # the scheduler's metric
    if inputs.control is not None:
        metrics.update(paired_eval(inputs.world, inputs.control, policy, setup.eval.seed, simulator))
        metrics["val_loss_rel"] = metrics["val_loss"] / cfg.model.margin
        metrics["score"] = score(metrics["lift_vs_sticky"], metrics["val_loss_rel"], setup.objective)
        _check_finite(metrics)
    # every per-track list, as a checkpoint saves them (the simulations computed those they read)
    lists = lists.complete() if needs_item_lists(serving.policy) else replace(lists, item=None)
    return TrialOutcome(result.model, cfg, data, lists, policy, metrics)


def _data(cfg: ExperimentConfig, inputs: TrialInputs, setup: TrialSetup) -> tuple[TrainingData, dict[str, float]]:
    """The trial's training data, and ``data_cache_hit`` when it went through the cache."""
    if inputs.data is not None:  # shared by every trial: no cache
        return inputs.data, {}
    loaded = training_data(inputs.events, inputs.world.catalog, cfg.features, setup.data_cache,
                           setup.source_digest, setup.data_cache_bytes)
    return loaded.data, {} if loaded.hit is None else {"data_cache_hit": float(loaded.hit)}


def _with_metrics(report_epoch: Callable[..., None], extra: dict[str, float]) -> Callable[..., None]:
    """``report_epoch`` with ``extra`` in every row (a trial ASHA stops still says where its data came from)."""
    if not extra:
        return report_epoch
    return lambda row, **kwargs: report_epoch({**row, **extra}, **kwargs)


def _watcher(setup: TrialSetup, simulator, rung_control, data, cfg, device) -> RungWatcher | None:
    if setup.rungs is None or rung_control is None:
        return None
    search = setup.serving_search or ServingSearchConfig(policies=[cfg.serving.policy], knobs={}, stepped=[])
    tuner = ServingTuner(search, simulator, rung_control, setup.rungs.seed)
    return RungWatcher(setup.rungs, tuner, data, cfg.serving, device)


def _serves(lists: Lists | None, serving) -> bool:
    """Whether ``lists`` can serve and export ``serving``: long enough, with the per-user
    lists (every export has them) and the per-track ones when the policy reads them."""
    return (lists is not None and lists.k >= serving.k and lists.user is not None
            and (lists.item is not None or not needs_item_lists(serving.policy)))


def _rung_hook(watcher: RungWatcher, report_epoch: Callable[..., None]):
    """After each epoch: measure a rung (at rung epochs), report, say whether to stop and why
    (``model.train`` then consults val-loss early stopping when the rungs say go on)."""
    def hook(row: dict, model) -> str | None:
        watcher.observe(int(row["epoch"]), model)
        report_epoch(row, rung_lift=watcher.best_lift if watcher.lifts else NAN)
        return watcher.stop_reason()
    return hook


def _training_metrics(result) -> dict:
    return {
        "val_loss": float(result.best_val_loss),
        "train_loss": float(result.history[-1]["train_loss"]) if result.history else NAN,
        "epoch": int(result.epochs),
        "train_seconds": float(result.seconds),
        "stopped_early": bool(result.stopped_early),
        "stop_reason": str(result.stop_reason),  # rung_plateau | early_stopping | max_epochs
        "device": str(result.device),
        "final": True,
    }


def _check_finite(metrics: dict) -> None:
    bad = [k for k in ("val_loss", *OBJECTIVE_KEYS) if not math.isfinite(metrics[k])]
    if bad:
        raise FloatingPointError(f"trial metrics not finite: {', '.join(bad)}")
