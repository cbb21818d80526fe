"""One trial, without Ray: config → training data → train (rungs) → serving search → paired A/B.

:func:`run_trial` is the search's whole trial pipeline; the Tune trainable (:mod:`search.trainable`)
adds only Ray's reporting and checkpoints around it, and ``search.seed_table``, ``search.calibrate``
and the benchmarks call it as it is. Its options:

* **rungs** (``setup.rungs``, multi-fidelity on the objective): after each epoch in
  ``rungs.epochs`` the current model is served (each candidate policy with the knobs chosen so
  far; after the first rung only its winner) on a few thousand sessions of the rung seed, paired
  with that seed's sticky_artist control: the *rung lift*. The trial stops when its rung lift stops
  improving and keeps the weights of its best rung (the per-epoch validation loss does not
  predict the lift);
* **in-trial serving search** (``setup.serving_search``): after training, coordinate descent over
  small grids on sessions of its own seed — first the policy, then each knob the chosen policy
  reads, one at a time. A trial's lists are computed once at the longest candidate ``k``; every
  candidate then costs one simulated run (it needs no training);
* **the paired A/B** on the evaluation seed when ``inputs.control`` is given (common random
  numbers: same users, session starts and per-step draws under both policies; docs/ab_test.md),
  with ``score`` from the objective weights. Without a control the trial stops after choosing its
  serving (``search.seed_table`` runs its own unpaired A/B on the policy).

Training data is built once per distinct ``features.*`` setting: shared in ``inputs.data``, or, when
the search samples ``features.*`` keys, loaded from ``<cache>/<digest>.npz`` (the digest covers the
feature config and a digest of the logs; written atomically, read with ``allow_pickle=False``).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from model.config import ExperimentConfig
from model.features import FeatureConfig, TrainingData, build_training_data
from model.infer import item_recommendations, recommend
from sim_bridge.contract.recs import ServingConfig
from model.train import train
from sim_bridge.contract import columns as C
from sim_bridge.abtest import paired_eval, paired_lift
from sim_bridge.contract.catalog import Catalog
from sim_bridge.contract.files import with_overrides
from sim_bridge.policies import (
    Policy,
    StickyArtist,
    knobs_of,
    needs_item_lists,
    needs_user_lists,
    serving_policy,
)
from sim_bridge.simulator import Simulator
from sim_bridge.world import World

from search.config import EvalConfig, ObjectiveConfig, RungConfig, ServingSearchConfig


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


@dataclass
class TrialInputs:
    """What every trial reads, prepared once (a search puts it in Ray's object store once).

    ``data`` is the shared training data, or None when each trial builds its own from ``events``;
    the controls are sticky_artist's sessions on the evaluation, rung and serving-search seeds;
    the simulator's per-world start table is built once (about 2 s a trial saved).
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
    """A trained and served trial: the model, its config as served, its lists, policy and metrics."""

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
    data = inputs.data
    if data is None:  # the search samples features.*: this trial's data is its own
        data = training_data(inputs.events, inputs.world.catalog, cfg.features, setup.data_cache,
                             setup.source_digest)
    simulator = inputs.simulator or Simulator(inputs.world)
    watcher = _watcher(setup, simulator, inputs.rung_control, data, cfg, device)
    report_epoch = on_epoch or (lambda row, rung_lift=NAN: None)
    result = train(cfg, data, on_epoch=None if watcher else report_epoch, device=device,
                   after_epoch=_rung_hook(watcher, report_epoch) if watcher else None)
    if watcher:
        watcher.restore_best(result.model)
    serving, metrics, lists = cfg.serving, _training_metrics(result), None
    if setup.serving_search is not None and inputs.tuning_control is not None:
        tuner = ServingTuner(setup.serving_search, simulator, inputs.tuning_control, setup.serving_search.seed)
        lists = tuner.lists(result.model, data, device, cfg.serving.k)
        choice = tuner.search(lists, watcher.serving if watcher else cfg.serving)
        serving = choice.serving
        metrics.update(serving_metrics(choice))
    cfg = replace(cfg, serving=serving)  # the trial is saved, exported and confirmed as served
    if lists is None or lists.user is None or (needs_item_lists(serving.policy) and lists.item is None):
        lists = model_lists(result.model, data, serving.k, ["indexed", serving.policy], device)
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
    return TrialOutcome(result.model, cfg, data, lists, policy, metrics)


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


def _training_metrics(result) -> dict:
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


# ---------------------------------------------------------------- choosing the serving by simulation


@dataclass
class Lists:
    """A model's lists at the longest candidate k; None for a kind no candidate policy needs."""

    user: dict[int, np.ndarray] | None
    item: dict[int, np.ndarray] | None

    def truncated(self, k: int) -> "Lists":
        cut = lambda lists: {key: v[:k] for key, v in lists.items()}  # noqa: E731
        return Lists(None if self.user is None else cut(self.user), None if self.item is None else cut(self.item))


@dataclass(frozen=True)
class Choice:
    """The serving chosen, its lift (%) on the tuning sessions, and how many servings were tried."""

    serving: ServingConfig
    lift: float
    tried: int


class ServingTuner:
    """Scores servings of one trial's lists on one seed's sessions (paired with its control)."""

    def __init__(self, cfg: ServingSearchConfig, simulator: Simulator, control: pd.DataFrame, seed: int):
        self.cfg, self.sim, self.control, self.seed = cfg, simulator, control, seed
        self.sessions = len(control)  # one row per session

    def lists(self, model, data, device: str = "cpu", min_k: int = 1, policies: list[str] | None = None) -> Lists:
        """The model's lists at the longest candidate k (at least ``min_k``), of the kinds
        ``policies`` (default: the candidate policies) need."""
        k = max([int(v) for v in self.cfg.knobs.get("k", [])] + [min_k])
        return model_lists(model, data, k, policies or self.cfg.policies, device)

    def lift(self, serving: ServingConfig, lists: Lists) -> float:
        """Paired lift (%) of ``serving`` vs sticky_artist on this tuner's sessions."""
        cut = lists.truncated(serving.k)
        policy = serving_policy(serving, self.sim.world.catalog, cut.user, cut.item)
        treatment = self.sim.run(policy, self.sessions, self.seed)
        return float(paired_lift(self.control, treatment.sessions).effect)

    def best_policy(self, lists: Lists, start: ServingConfig, policies: list[str] | None = None) -> Choice:
        """Each of ``policies`` (default: the candidates) with ``start``'s knobs; the best."""
        scored = [(self.lift(s, lists), s) for s in (replace(start, policy=p) for p in policies or self.cfg.policies)]
        lift, serving = max(scored, key=lambda t: t[0])
        return Choice(serving, lift, len(scored))

    def search(self, lists: Lists, start: ServingConfig) -> Choice:
        """Coordinate descent: the policy, then each of its knobs over the grid, one at a time."""
        best = self.best_policy(lists, start)
        seen = {_key(best.serving): best.lift}
        tried = best.tried
        for knob in knobs_of(best.serving.policy, list(self.cfg.knobs)):
            for value in self.cfg.knobs[knob]:
                cand = with_overrides(best.serving, {knob: value})
                if _key(cand) in seen:
                    continue
                lift = seen[_key(cand)] = self.lift(cand, lists)
                tried += 1
                if lift > best.lift:
                    best = Choice(cand, lift, tried)
        return Choice(best.serving, best.lift, tried)


def model_lists(model, data, k: int, policies: list[str], device: str = "cpu") -> Lists:
    """``model``'s top-``k`` lists: per user when a policy needs them, per track likewise."""
    user = any(needs_user_lists(p) for p in policies)
    item = any(needs_item_lists(p) for p in policies)
    return Lists(recommend(model, data, k=k, device=device) if user else None,
                 item_recommendations(model, data, k=k, device=device) if item else None)


def _key(serving: ServingConfig) -> tuple:
    return tuple(sorted(vars(serving).items()))


def serving_metrics(choice: Choice, prefix: str = "serving") -> dict:
    """A choice as flat report keys: ``serving/policy``, ``serving/k``, ... and its tuning lift."""
    out = {f"{prefix}/{k}": v for k, v in vars(choice.serving).items()}
    out["tuning_lift"] = choice.lift if math.isfinite(choice.lift) else NAN
    out["serving_tried"] = choice.tried
    return out


class RungWatcher:
    """Called after every epoch; measures the rung lift at rung epochs and says when to stop."""

    def __init__(self, cfg: RungConfig, tuner: ServingTuner, data, serving: ServingConfig, device: str = "cpu"):
        self.cfg, self.tuner, self.data, self.device = cfg, tuner, data, device
        self.serving = serving  # the best policy at the latest rung (knobs: the base config's)
        self.lifts: dict[int, float] = {}  # epoch → rung lift
        self.best_lift, self.best_epoch, self.best_state = -math.inf, 0, None
        self.seconds = 0.0  # spent measuring rungs
        self.bad_rungs = 0

    def observe(self, epoch: int, model) -> float | None:
        """At a rung epoch: the rung lift of ``model`` (also remembered); else None."""
        if epoch not in self.cfg.epochs:
            return None
        t0 = time.perf_counter()
        # after the first rung only its winner is served: each rung's lists cost more than its simulations
        policies = [self.serving.policy] if self.lifts else None
        lists = self.tuner.lists(model, self.data, self.device, self.serving.k, policies)
        choice = self.tuner.best_policy(lists, self.serving, policies)
        model.train()  # back to training mode (inference switched it to eval)
        self.serving, self.lifts[epoch] = choice.serving, choice.lift
        self.bad_rungs = 0 if choice.lift >= self.best_lift + self.cfg.min_improvement else self.bad_rungs + 1
        if choice.lift > self.best_lift:
            self.best_lift, self.best_epoch = choice.lift, epoch
            self.best_state = copy.deepcopy(model.state_dict())
        self.seconds += time.perf_counter() - t0
        return choice.lift

    @property
    def latest(self) -> float:
        """The latest rung lift (NaN before the first rung)."""
        return self.lifts[max(self.lifts)] if self.lifts else math.nan

    def plateaued(self) -> bool:
        """True after ``patience`` rungs in a row without a ``min_improvement`` gain, or past the last rung."""
        if not self.lifts:
            return False
        return self.bad_rungs >= self.cfg.patience or max(self.lifts) >= self.cfg.epochs[-1]

    def restore_best(self, model) -> None:
        """Load the weights of the best rung into ``model`` (no-op before the first rung)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        model.eval()

    def metrics(self) -> dict:
        """``rung_lift_<epoch>`` per rung, the best rung and the seconds the rungs took."""
        out = {f"rung_lift_{e}": v for e, v in self.lifts.items()}
        out.update(rung_best_epoch=self.best_epoch, rung_best_lift=self.best_lift if self.lifts else math.nan,
                   rung_seconds=self.seconds)
        return out


# ---------------------------------------------------------------- the training-data cache


def source_digest(events: pd.DataFrame, catalog: Catalog) -> str:
    """A digest of everything the training data is built from besides its config: the logs' columns
    (row order included) and the catalog's public columns (genres, artists, popularity: two worlds
    with the same logs but other genre labels must not share a cache file)."""
    h = hashlib.sha256()
    for frame in (events[[C.USER, C.TRACK, C.TIME, C.TIMESTAMP]], catalog.tracks[list(C.CATALOG_COLUMNS)]):
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def data_digest(features: FeatureConfig, source: str) -> str:
    blob = json.dumps({"features": dataclasses.asdict(features), "source": source}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def training_data(events: pd.DataFrame, catalog: Catalog, features: FeatureConfig,
                  cache_dir: str | Path | None = None, source: str | None = None) -> TrainingData:
    """``build_training_data``, through the on-disk cache when ``cache_dir`` and ``source``
    (:func:`source_digest` of ``events`` and ``catalog``) are given."""
    if cache_dir is None or source is None:
        return build_training_data(events, catalog, features)
    path = Path(cache_dir) / f"{data_digest(features, source)}.npz"
    if path.is_file():
        try:
            return _load_data(path)
        except (OSError, ValueError, KeyError):
            pass  # a damaged file: rebuild and replace it
    data = build_training_data(events, catalog, features)
    _save_data(data, path)
    return data


def _save_data(data: TrainingData, path: Path) -> None:
    """Write ``data`` to ``path`` atomically (concurrent trials may race: the last rename wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{f.name: np.asarray(getattr(data, f.name)) for f in dataclasses.fields(data)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_data(path: Path) -> TrainingData:
    with np.load(path, allow_pickle=False) as z:
        arrays = {f.name: z[f.name] for f in dataclasses.fields(TrainingData)}
    arrays["n_tracks"] = int(arrays["n_tracks"])
    return TrainingData(**arrays)
