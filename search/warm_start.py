"""``--warm-start EXPERIMENT_DIR``: seed a new search's Optuna study with an earlier run's trials.

Every finished trial of the earlier run whose sampled values all lie inside the new space becomes
a COMPLETE trial of the new study (its objective value as it was measured); every trial stopped
by the scheduler becomes PRUNED. The sampler then starts from what the earlier run learned
instead of from scratch. The earlier run must have used the same objective: values of another
objective would mislead the sampler, so that is refused.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pandas as pd

from search import results
from search.errors import SearchError
from search.searcher import Objective
from search.space import Param, to_optuna

RUN_FILE = "search_run.json"


class WarmStartError(SearchError):
    """The earlier experiment cannot seed this search (one line, naming the folder)."""


def earlier_trials(exp_dir: str | Path, objective_name: str) -> pd.DataFrame:
    """The earlier run's trials (``trials.parquet``, else Tune's files), checked for its objective."""
    exp_dir = Path(exp_dir)
    run_file = exp_dir / RUN_FILE
    if not run_file.is_file():
        raise WarmStartError(f"--warm-start {exp_dir}: no {RUN_FILE} there (not a search experiment)")
    earlier = json.loads(run_file.read_text()).get("objective", "score")
    if earlier != objective_name:
        raise WarmStartError(f"--warm-start {exp_dir}: it optimised --objective {earlier}, this run {objective_name}")
    path = exp_dir / results.TRIALS_FILE
    return pd.read_parquet(path) if path.is_file() else results.trials_frame(exp_dir)


def frozen_trials(frame: pd.DataFrame, spec: dict[str, Param], obj: Objective) -> list[optuna.trial.FrozenTrial]:
    """Finished trials → COMPLETE, stopped ones → PRUNED; trials outside the space are skipped."""
    dists = to_optuna(spec)
    out = []
    for _, row in frame.iterrows():
        params = _params(row, dists)
        if params is None or row["status"] not in ("finished", "stopped"):
            continue
        if row["status"] == "stopped":
            out.append(optuna.trial.create_trial(params=params, distributions=dists,
                                                 state=optuna.trial.TrialState.PRUNED))
            continue
        values = [row.get(m) for m in (obj.metric if obj.multi else [obj.metric])]
        if all(v is not None and math.isfinite(float(v)) for v in values):
            value = {"values": [float(v) for v in values]} if obj.multi else {"value": float(values[0])}
            out.append(optuna.trial.create_trial(params=params, distributions=dists, **value))
    return out


def _params(row: pd.Series, dists: dict) -> dict | None:
    params = {}
    for key, dist in dists.items():
        value = row.get(f"config/{key}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        value = _typed(value, dist)
        inside = value in dist.choices if isinstance(dist, optuna.distributions.CategoricalDistribution) \
            else dist.low <= value <= dist.high
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
