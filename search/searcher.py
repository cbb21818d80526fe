"""Optuna behind a ConcurrencyLimiter, the ASHA scheduler, and what each objective optimises.

The sampler is TPE, multivariate (it models how the keys interact) and grouped (keys that exist
only in some trials are modelled apart), seeded, with ``constant_liar`` so concurrent trials
spread out; ``sampler.kind: random`` is the baseline. The study lives in an Optuna journal file
in the experiment folder (``optuna.journal``), so ``optuna-dashboard`` can show it while it runs.

How early-stopped trials stay out of Optuna's statistics: the objective (``score``,
``lift_vs_sticky``, ``time_per_session``) exists only in a trial's *final* report, after the
simulated A/B; per-epoch reports carry it as NaN with ``final = False``. ASHA decides on the
per-epoch ``rung_lift`` (:mod:`search.rungs`). :class:`FinalOnlyOptunaSearch` tells Optuna a trial is COMPLETE only when
its last result is final; a trial ASHA stopped is told PRUNED (no value), an errored one FAIL.
So a partial score — even a partial ``val_loss`` under ``--objective val_loss`` — never reaches
the sampler as if the trial had finished. ``multi`` runs without a scheduler.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from search.config import AshaConfig, SamplerConfig
from search.space import Param, to_optuna

OBJECTIVES = ("score", "lift", "val_loss", "multi")
JOURNAL_FILE = "optuna.journal"  # the Optuna study of a run, in its experiment folder


@dataclass(frozen=True)
class Objective:
    """The metric(s) and mode(s) the searcher optimises."""

    metric: str | list[str]
    mode: str | list[str]

    @property
    def multi(self) -> bool:
        return isinstance(self.metric, list)


def objective(name: str) -> Objective:
    """``score``/``lift`` maximise; ``val_loss`` minimises; ``multi``: (val_loss ↓, time ↑)."""
    table = {
        "score": Objective("score", "max"),
        "lift": Objective("lift_vs_sticky", "max"),
        "val_loss": Objective("val_loss", "min"),
        "multi": Objective(["val_loss", "time_per_session"], ["min", "max"]),
    }
    if name not in table:
        raise ValueError(f"unknown objective {name!r} (choose from {', '.join(OBJECTIVES)})")
    return table[name]


class FinalOnlyOptunaSearch(OptunaSearch):
    """OptunaSearch that only ever learns from a trial's final report (see the module doc)."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # Intermediate values are not the objective (NaN placeholders); TPE does not need them.
        return

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result is not None and not result.get("final", False):
            result = None  # stopped before its final report → PRUNED (FAIL when errored)
        super().on_trial_complete(trial_id, result=result, error=error)


def study_storage(exp_dir: str | Path) -> JournalStorage:
    """The run's Optuna storage: a journal file (appends only, so a live dashboard can read it)."""
    Path(exp_dir).mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(Path(exp_dir) / JOURNAL_FILE)))


def build_sampler(cfg: SamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    """Seeded multivariate, grouped TPE (``constant_liar``: concurrent trials spread out), or random."""
    if cfg.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, multivariate=True, group=True,
                                      n_startup_trials=cfg.n_startup_trials)


def build_searcher(spec: dict[str, Param], obj: Objective, seed: int, max_concurrent: int,
                   start_from: dict | None = None, sampler: SamplerConfig | None = None,
                   storage: JournalStorage | None = None, study_name: str | None = None) -> ConcurrencyLimiter:
    """Optuna (TPE by default) behind a ConcurrencyLimiter, its study in ``storage`` when given.

    ``start_from`` (the base config's values, when inside the space) is the first trial, so the
    seed's own configuration is always measured alongside the search.
    """
    searcher = FinalOnlyOptunaSearch(
        space=to_optuna(spec), metric=obj.metric, mode=obj.mode,
        sampler=build_sampler(sampler or SamplerConfig(), seed), seed=None,
        points_to_evaluate=[start_from] if start_from else None, storage=storage, study_name=study_name,
    )
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def build_scheduler(obj: Objective, asha: AshaConfig, max_epochs: int, rungs: bool = True):
    """ASHA on the rung lift (off for ``multi``, without rungs, or when disabled) — else FIFO."""
    if obj.multi or not asha.enabled or not rungs:
        return FIFOScheduler()
    return ASHAScheduler(
        metric="rung_lift", mode="max", time_attr="training_iteration",
        max_t=max_epochs + 1,  # + the final report
        grace_period=min(asha.grace_period, max_epochs), reduction_factor=asha.reduction_factor,
    )


def base_point(spec: dict[str, Param], flat_base: dict) -> dict | None:
    """The base config's values for the searched keys, or None when one lies outside the space."""
    point = {}
    for key, p in spec.items():
        value = flat_base.get(key)
        inside = value in p.values if p.type == "choice" else (
            value is not None and p.low <= value <= p.high and (p.type != "int" or (value - p.low) % p.step == 0))
        if not inside:
            return None
        point[key] = value
    return point
