"""Optuna behind a ConcurrencyLimiter, the ASHA scheduler, the time budget (:class:`TimeBudget`),
and what each objective optimises.

The sampler is TPE, multivariate (it models how the keys interact) and grouped (keys that exist
only in some trials are modelled apart), seeded, with ``constant_liar`` so concurrent trials
spread out; ``sampler.kind: gp`` is Optuna's Gaussian process, ``random`` the baseline. The
study lives in an Optuna journal file in the experiment folder (``optuna.journal``), so
``optuna-dashboard`` can show it while it runs.

How early-stopped trials stay out of Optuna's statistics: the objective (``score``,
``lift_vs_sticky``, ``time_per_session``) exists only in a trial's *final* report, after the
simulated A/B; per-epoch reports carry it as NaN with ``final = False``. ASHA decides on the
per-epoch ``rung_lift`` (:mod:`search.trial`). :class:`FinalOnlyOptunaSearch` tells Optuna a trial is
COMPLETE only when its last result is final; a trial ASHA stopped is told PRUNED (no value), an errored one FAIL.
So a partial score — even a partial ``val_loss`` under ``--objective val_loss`` — never reaches
the sampler as if the trial had finished. ``multi`` runs without a scheduler.

What the sampler does learn from a pruned trial: its per-epoch progress, reported to Optuna as
intermediate values (the rung lift when the objective is maximised, the validation loss when it
is minimised). TPE ranks pruned trials by the last epoch they reached, then by that value, so a
trial ASHA kept until epoch 4 counts as better than one stopped at epoch 1, and of two stopped at
epoch 1 the one with the higher rung lift; without the values every pruned trial ranked alike.
ASHA stops many of a search's trials after one epoch (see docs/results.md): much of what a search
measures.

``--warm-start EXPERIMENT_DIR`` seeds a new study with an earlier run's trials: every finished trial
whose sampled values all lie inside the new space becomes a COMPLETE trial (its objective value as
measured), every trial the scheduler stopped a PRUNED one (with its last progress value), so the
sampler starts from what the earlier run learned, and the earlier winner's values are the first
trial, measured again on the new logs. The earlier run must have optimised the same objective
(values of another would mislead the sampler).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import optuna
import pandas as pd
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.stopper import Stopper
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from search import experiment
from search.config import AshaConfig, Objective, SamplerConfig
from search.errors import SearchError
from search.space import Param, on_grid, to_optuna
from search.trials import load_trials, ranked


class FinalOnlyOptunaSearch(OptunaSearch):
    """OptunaSearch whose objective values come only from final reports; per-epoch reports give
    ``progress_key`` as intermediate values (see the module doc)."""

    def __init__(self, *args, progress_key: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.progress_key = progress_key

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self.progress_key is None or isinstance(self.metric, list) or trial_id in self._completed_trials:
            return
        value, step = result.get(self.progress_key), result.get("training_iteration")
        if value is not None and step is not None and math.isfinite(float(value)):
            self._live_trial(trial_id).report(float(value), int(step))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result is not None and not result.get("final", False):
            result = None  # stopped before its final report → PRUNED (FAIL when errored)
        if trial_id not in self._completed_trials:
            self._live_trial(trial_id)
        super().on_trial_complete(trial_id, result=result, error=error)

    def _live_trial(self, trial_id: str) -> optuna.Trial:
        """The trial's Optuna trial. One that a stopped search marked FAIL (:func:`fail_unfinished`)
        and Tune now runs again (``--resume``) is replaced, the first time it is heard of, by a new
        Optuna trial with the same values (user attribute ``rerun_of``: the old number)."""
        checked = self.__dict__.setdefault("_live", set())  # absent from a searcher pickled by older code
        if trial_id not in checked:
            checked.add(trial_id)
            old = self._ot_study.get_trials(deepcopy=False)[self._ot_trials[trial_id].number]
            if old.state == optuna.trial.TrialState.FAIL:
                self._ot_study.enqueue_trial(old.params, user_attrs={RERUN_OF: old.number})
                self._ot_trials[trial_id] = self._ot_study.ask(fixed_distributions=old.distributions)
        return self._ot_trials[trial_id]


RERUN_OF = "rerun_of"  # user attribute of an Optuna trial that reruns an interrupted one


def fail_unfinished(exp_dir: str | Path) -> int:
    """Tell the run's study that every trial still RUNNING in it failed; the number of them.

    Called when the search stops: nothing runs any more, so a trial the journal still shows running
    was interrupted (Ctrl-C, the time budget). Marked FAIL, optuna-dashboard no longer shows it
    running forever; ``--resume`` reruns it as a new Optuna trial (see ``_live_trial``).
    """
    if not (Path(exp_dir) / experiment.JOURNAL_FILE).is_file():
        return 0
    storage, failed = study_storage(exp_dir), 0
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler())
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            failed += 1
    return failed


def study_storage(exp_dir: str | Path) -> JournalStorage:
    """The run's Optuna storage: a journal file (appends only, so a live dashboard can read it)."""
    Path(exp_dir).mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(Path(exp_dir) / experiment.JOURNAL_FILE)))


def build_sampler(cfg: SamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    """Seeded multivariate, grouped TPE (``constant_liar``: concurrent trials spread out), a Gaussian
    process (its acquisition counts the running trials; keys that exist only in some trials are
    drawn at random), or random."""
    if cfg.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if cfg.kind == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=cfg.n_startup_trials,
                                         warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, multivariate=True, group=True,
                                      n_startup_trials=cfg.n_startup_trials)


def build_searcher(spec: dict[str, Param], obj: Objective, seed: int, max_concurrent: int,
                   start_from: list[dict | None] = (), sampler: SamplerConfig | None = None,
                   storage: JournalStorage | None = None, study_name: str | None = None) -> ConcurrencyLimiter:
    """Optuna (TPE by default) behind a ConcurrencyLimiter, its study in ``storage`` when given.

    ``start_from``: the first trials, in order (None entries skipped): the base config's values,
    when inside the space, so the seed's own configuration is always measured alongside the search,
    and on a warm start the earlier run's winner (:func:`warm_best`), measured again on these logs.
    """
    points = [p for i, p in enumerate(start_from) if p and p not in start_from[:i]]
    searcher = FinalOnlyOptunaSearch(
        space=to_optuna(spec), metric=obj.metric, mode=obj.mode, progress_key=progress_key(obj),
        sampler=build_sampler(sampler or SamplerConfig(), seed), seed=None,
        points_to_evaluate=points or None, storage=storage, study_name=study_name,
    )
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def progress_key(obj: Objective) -> str | None:
    """The per-epoch value a pruned trial is ranked by: the rung lift (maximised) or the validation
    loss (minimised), the study's direction; None for ``multi`` (Optuna keeps no intermediate values)."""
    if obj.multi:
        return None
    return "rung_lift" if obj.mode == "max" else "val_loss"


class RecordingASHA(ASHAScheduler):
    """ASHA that appends the id of every trial it stops before its final report to ``record``
    (one per line; :func:`search.trials.asha_stopped` reads it), so a trial ASHA stopped can be
    told from one that ``--time-budget-s`` or an interrupted run ended (Tune marks both TERMINATED)."""

    def __init__(self, *args, record: str | Path | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.record = None if record is None else str(record)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == self.STOP and not result.get("final") and self.record is not None:
            with open(self.record, "a") as fh:
                fh.write(f"{trial.trial_id}\n")
        return action


def build_scheduler(obj: Objective, asha: AshaConfig, max_epochs: int, rungs: bool = True,
                    record: str | Path | None = None):
    """ASHA on the rung lift (off for ``multi``, without rungs, or when disabled) — else FIFO.
    ``record``: the file the trials ASHA stops are listed in (``experiment.ASHA_STOPS_FILE``)."""
    if obj.multi or not asha.enabled or not rungs:
        return FIFOScheduler()
    return RecordingASHA(
        metric="rung_lift", mode="max", time_attr="training_iteration",
        max_t=max_epochs + 1,  # + the final report
        grace_period=min(asha.grace_period, max_epochs), reduction_factor=asha.reduction_factor,
        record=record,
    )


class TimeBudget(Stopper):
    """``--time-budget-s``: stop the whole search that many seconds after this driver process started
    it. The seconds are read from the run's settings (``search_run.json`` in ``exp_dir``) at the first
    check, so ``--resume`` gives the search its budget again, or the one ``--resume --time-budget-s``
    sets; no budget there, no stop. (Tune's own ``time_budget_s`` keeps its spent budget in the
    experiment state: a search it stopped would stop again at once on ``--resume``.)"""

    def __init__(self, exp_dir: str | Path):
        self.exp_dir = str(exp_dir)
        self.deadline: float | None = None  # set by the first check, once the search has started

    def __call__(self, trial_id, result) -> bool:
        return False  # never one trial: the whole search (stop_all)

    def stop_all(self) -> bool:
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + (self.seconds() or math.inf)
        return now >= self.deadline

    def seconds(self) -> float | None:
        try:
            return experiment.read_run_file(Path(self.exp_dir)).get("time_budget_s")
        except SearchError as exc:  # the folder moved since Tune pickled this stopper
            print(f"WARNING: no time budget: {exc}", flush=True)
            return None

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, deadline=None)  # restored by --resume: a new clock


def base_point(spec: dict[str, Param], flat_base: dict) -> dict | None:
    """The base config's values for the searched keys, or None when one lies outside the space."""
    point = {}
    for key, p in spec.items():
        value = flat_base.get(key)
        inside = value in p.values if p.type == "choice" else (
            value is not None and p.low <= value <= p.high and on_grid(value, p.low, p.step))
        if not inside:
            return None
        point[key] = value
    return point


# ---------------------------------------------------------------- --warm-start


class WarmStartError(SearchError):
    """The earlier experiment cannot seed this search (one line, naming the folder)."""


def earlier_trials(exp_dir: str | Path, objective_name: str) -> pd.DataFrame:
    """The earlier run's trials (``trials.parquet``, else Tune's files), checked for its objective."""
    exp_dir = Path(exp_dir)
    if not (exp_dir / experiment.RUN_FILE).is_file():
        raise WarmStartError(f"--warm-start {exp_dir}: no {experiment.RUN_FILE} there (not a search experiment)")
    earlier = experiment.read_run_file(exp_dir).get("objective", "score")
    if earlier != objective_name:
        raise WarmStartError(f"--warm-start {exp_dir}: it optimised --objective {earlier}, this run {objective_name}")
    return load_trials(exp_dir)


def frozen_trials(frame: pd.DataFrame, spec: dict[str, Param], obj: Objective) -> list[optuna.trial.FrozenTrial]:
    """Finished trials → COMPLETE, stopped ones → PRUNED; trials outside the space are skipped."""
    dists = to_optuna(spec)
    out = []
    for _, row in frame.iterrows():
        params = _params(row, dists)
        if params is None or row["status"] not in ("finished", "stopped"):
            continue
        if row["status"] == "stopped":
            out.append(optuna.trial.create_trial(params=params, distributions=dists, state=optuna.trial.TrialState.PRUNED,
                                                 intermediate_values=_progress(row, obj)))
            continue
        values = [row.get(m) for m in (obj.metric if obj.multi else [obj.metric])]
        if all(v is not None and math.isfinite(float(v)) for v in values):
            value = {"values": [float(v) for v in values]} if obj.multi else {"value": float(values[0])}
            out.append(optuna.trial.create_trial(params=params, distributions=dists, **value))
    return out


def warm_best(frame: pd.DataFrame, spec: dict[str, Param], obj: Objective) -> dict | None:
    """The earlier run's best finished trial's values, when inside the space: the new search's first
    trial, so a round of the feedback loop always measures the last winner on its new logs (the
    sampler alone may never propose it again)."""
    best = ranked(frame, obj)
    return None if best.empty else _params(best.iloc[0], to_optuna(spec))


def _progress(row: pd.Series, obj: Objective) -> dict[int, float]:
    """A stopped trial's last progress value at its last epoch, as ``FinalOnlyOptunaSearch`` reports it."""
    key = progress_key(obj)
    value, step = row.get(key) if key else None, row.get("training_iteration")
    if value is None or step is None or not math.isfinite(float(value)) or not math.isfinite(float(step)):
        return {}
    return {int(step): float(value)}


def _params(row: pd.Series, dists: dict) -> dict | None:
    params = {}
    for key, dist in dists.items():
        value = row.get(f"config/{key}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        value = _typed(value, dist)
        inside = value in dist.choices if isinstance(dist, optuna.distributions.CategoricalDistribution) \
            else dist.low <= value <= dist.high and on_grid(value, dist.low, dist.step)
        if not inside:
            return None
        params[key] = value
    return params


def _typed(value, dist):
    """Parquet may store a mixed choice column as strings ('true', '64'): map back to the choice."""
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        for choice in dist.choices:
            if value == choice or str(value) == str(choice):
                return choice
        return value
    if isinstance(dist, optuna.distributions.IntDistribution):
        return int(value)
    return float(value)


def seed_study(storage, study_name: str, obj: Objective, trials: list[optuna.trial.FrozenTrial]) -> int:
    """Create the run's study in ``storage`` with ``trials`` in it; returns how many were added."""
    directions = ["minimize" if m == "min" else "maximize" for m in (obj.mode if obj.multi else [obj.mode])]
    study = optuna.create_study(storage=storage, study_name=study_name, directions=directions, load_if_exists=True)
    study.add_trials(trials)
    return len(trials)
