"""search.warm_start: an earlier run's trials seed a new study (finished → complete, stopped → pruned)."""
import json
import math

import optuna
import pandas as pd
import pytest

from search.searcher import objective, study_storage
from search.space import Param
from search.warm_start import WarmStartError, earlier_trials, frozen_trials, seed_study

SPEC = {"model.norm": Param("choice", values=["none", "l2"]), "train.lr": Param("loguniform", low=1e-4, high=1e-2),
        "model.dense_depth": Param("int", low=1, high=3)}


def frame() -> pd.DataFrame:
    return pd.DataFrame([
        {"trial_id": "a", "status": "finished", "score": 90.0, "config/model.norm": "l2", "config/train.lr": 1e-3,
         "config/model.dense_depth": 2},
        {"trial_id": "b", "status": "stopped", "score": math.nan, "config/model.norm": "none",
         "config/train.lr": 5e-3, "config/model.dense_depth": 1},
        {"trial_id": "c", "status": "finished", "score": 70.0, "config/model.norm": "layernorm",  # not in the space
         "config/train.lr": 1e-3, "config/model.dense_depth": 2},
        {"trial_id": "d", "status": "errored", "score": math.nan, "config/model.norm": "l2",
         "config/train.lr": 1e-3, "config/model.dense_depth": 3},
    ])


def test_finished_become_complete_stopped_pruned_the_rest_skipped(tmp_path):
    trials = frozen_trials(frame(), SPEC, objective("score"))
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert trials[0].value == 90.0 and trials[0].params == {"model.norm": "l2", "train.lr": 1e-3, "model.dense_depth": 2}
    assert seed_study(study_storage(tmp_path), "new", objective("score"), trials) == 2
    study = optuna.load_study(study_name="new", storage=study_storage(tmp_path))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert study.best_value == 90.0


def test_the_earlier_run_must_be_a_search_of_the_same_objective(tmp_path):
    with pytest.raises(WarmStartError, match="no search_run.json"):
        earlier_trials(tmp_path, "score")
    (tmp_path / "search_run.json").write_text(json.dumps({"objective": "val_loss"}))
    with pytest.raises(WarmStartError, match="--objective val_loss"):
        earlier_trials(tmp_path, "score")
    (tmp_path / "search_run.json").write_text(json.dumps({"objective": "score"}))
    frame().to_parquet(tmp_path / "trials.parquet")
    assert list(earlier_trials(tmp_path, "score")["trial_id"]) == ["a", "b", "c", "d"]


def test_the_cli_refuses_a_folder_that_is_not_a_search_before_ray_starts(tmp_path, capsys):
    from search.run import main

    code = main(["--smoke-test", "--storage-path", str(tmp_path / "runs"), "--name", "new",
                 "--warm-start", str(tmp_path)])
    assert code == 2 and "no search_run.json" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "new").exists()  # nothing half-written
