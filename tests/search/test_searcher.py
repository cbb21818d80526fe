"""search.searcher: what Optuna learns, the scheduler, warm starts; ranking trials (search.trials)."""
import json
import math

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from model.config import load_experiment_config
from search.config import SEARCH_FILE, AshaConfig, ConfigError, SamplerConfig, load_search_config, objective
from search.space import Param, parse_space, to_optuna
from search.trials import pareto_mask, ranked
from search.searcher import (FinalOnlyOptunaSearch, WarmStartError, base_point, build_sampler, build_scheduler,
                             build_searcher, earlier_trials, frozen_trials, progress_key, seed_study, study_storage,
                             warm_best)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _searcher(metric="score", mode="max"):
    return FinalOnlyOptunaSearch(space={"x": FloatDistribution(0, 1)}, metric=metric, mode=mode, seed=0)


def test_only_a_final_report_completes_an_optuna_trial():
    s = _searcher()
    for tid in ("done", "stopped", "broken"):
        s.suggest(tid)
    partial = {"score": math.nan, "val_loss": 0.3, "final": False, "training_iteration": 3}
    s.on_trial_result("stopped", partial)
    s.on_trial_complete("stopped", result=partial)  # what Tune sends when ASHA stops a trial
    s.on_trial_complete("broken", error=True)
    s.on_trial_complete("done", result={"score": 4.5, "val_loss": 0.2, "final": True})
    states = [t.state for t in s._ot_study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    assert s._ot_study.trials[0].value == 4.5
    assert s._ot_study.trials[1].intermediate_values == {}


def test_pruned_trials_carry_their_progress_for_the_sampler():
    s = FinalOnlyOptunaSearch(space={"x": FloatDistribution(0, 1)}, metric="score", mode="max", seed=0,
                              progress_key="rung_lift")
    for tid in ("early", "late"):
        s.suggest(tid)
    s.on_trial_result("early", {"score": math.nan, "rung_lift": math.nan, "training_iteration": 1})  # before a rung
    s.on_trial_result("early", {"score": math.nan, "rung_lift": 12.5, "training_iteration": 2, "final": False})
    s.on_trial_complete("early", result={"score": math.nan, "rung_lift": 12.5, "final": False})
    for epoch, lift in ((1, 40.0), (4, 95.0)):
        s.on_trial_result("late", {"score": math.nan, "rung_lift": lift, "training_iteration": epoch, "final": False})
    s.on_trial_complete("late", result={"score": math.nan, "final": False})
    s.on_trial_result("late", {"rung_lift": 99.0, "training_iteration": 5})  # after its end: ignored
    early, late = s._ot_study.trials
    assert (early.state, late.state) == (TrialState.PRUNED, TrialState.PRUNED)  # never a value
    assert early.intermediate_values == {2: 12.5} and late.intermediate_values == {1: 40.0, 4: 95.0}


def test_the_progress_key_follows_the_objective():
    assert progress_key(objective("score")) == "rung_lift" and progress_key(objective("lift")) == "rung_lift"
    assert progress_key(objective("val_loss")) == "val_loss"
    assert progress_key(objective("multi")) is None


def test_partial_val_loss_is_not_a_result_either():
    s = _searcher("val_loss", "min")
    s.suggest("a")
    s.on_trial_complete("a", result={"val_loss": 0.9, "final": False})
    assert s._ot_study.trials[0].state == TrialState.PRUNED


def test_scheduler_asha_on_the_rung_lift_but_never_for_multi_or_without_rungs():
    asha = build_scheduler(objective("score"), AshaConfig(), max_epochs=12)
    assert isinstance(asha, ASHAScheduler) and asha.metric == "rung_lift" and asha._mode == "max"
    assert asha._max_t == 13  # the epochs + the final report, so ASHA never cuts the final report
    assert isinstance(build_scheduler(objective("multi"), AshaConfig(), 12), FIFOScheduler)
    assert isinstance(build_scheduler(objective("lift"), AshaConfig(enabled=False), 12), FIFOScheduler)
    assert isinstance(build_scheduler(objective("lift"), AshaConfig(), 12, rungs=False), FIFOScheduler)


def test_asha_records_the_trials_it_stops_before_their_final_report(tmp_path):
    from types import SimpleNamespace

    record = tmp_path / "asha_stopped.txt"
    asha = build_scheduler(objective("score"), AshaConfig(grace_period=1, reduction_factor=3), 12, record=record)
    trials = [SimpleNamespace(trial_id=t) for t in "abcd"]
    for t in trials:
        asha.on_trial_add(None, t)
    # rung 1 (training_iteration 1): a, b, c set the cutoff; d trails the top third → STOP
    for t, lift in zip(trials, [50.0, 60.0, 70.0, 10.0]):
        action = asha.on_trial_result(None, t, {"training_iteration": 1, "rung_lift": lift, "final": False})
    assert action == asha.STOP and record.read_text() == "d\n"
    # a STOP on a final report (the trial already finished) is not an ASHA stop
    assert asha.on_trial_result(None, trials[0], {"training_iteration": 13, "rung_lift": 50.0, "final": True}) == asha.STOP
    assert record.read_text() == "d\n"


def test_sampler_tpe_multivariate_grouped_gp_or_random():
    tpe = build_sampler(SamplerConfig(n_startup_trials=8), seed=3)
    assert isinstance(tpe, optuna.samplers.TPESampler)
    assert tpe._multivariate and tpe._group and tpe._n_startup_trials == 8
    assert isinstance(build_sampler(SamplerConfig(kind="random"), 3), optuna.samplers.RandomSampler)
    assert isinstance(build_sampler(SamplerConfig(kind="gp", n_startup_trials=4), 3), optuna.samplers.GPSampler)
    with pytest.raises(ConfigError, match="sampler.kind: expected one of tpe, gp, random, got 'cmaes'"):
        SamplerConfig(kind="cmaes")


def test_a_gp_search_draws_at_random_then_from_its_model():
    """The GP's startup trials are its seed's random draws; after them it proposes from its model
    (not the random sampler's next draws), the same proposals for the same seed."""
    space = {"x": FloatDistribution(0.0, 1.0), "k": optuna.distributions.CategoricalDistribution([16, 32, 64])}

    def proposals(cfg):
        study = optuna.create_study(direction="maximize", sampler=build_sampler(cfg, seed=5))
        out = []
        for _ in range(6):
            trial = study.ask(space)
            study.tell(trial, -(trial.params["x"] - 0.7) ** 2 + (trial.params["k"] == 32))
            out.append(trial.params)
        return out

    gp, random = proposals(SamplerConfig(kind="gp", n_startup_trials=3)), proposals(SamplerConfig(kind="random"))
    assert gp[:3] == random[:3] and all(a != b for a, b in zip(gp[3:], random[3:]))
    assert proposals(SamplerConfig(kind="gp", n_startup_trials=3)) == gp

    # the default space (choices, log-uniform, int): the GP's proposals stay inside it
    scfg = load_search_config(SEARCH_FILE)
    space = to_optuna(parse_space(scfg.space, load_experiment_config(scfg.base)))
    study = optuna.create_study(direction="maximize", sampler=build_sampler(SamplerConfig(kind="gp", n_startup_trials=3), 0))
    for i in range(5):
        trial = study.ask(space)
        assert all(space[k]._contains(space[k].to_internal_repr(v)) for k, v in trial.params.items())
        study.tell(trial, float(trial.params["model.margin"] + i))


def test_the_study_lives_in_the_experiment_folder(tmp_path):
    s = build_searcher({"x": Param("uniform", low=0.0, high=1.0)}, objective("score"), seed=0, max_concurrent=2,
                       start_from=[None, {"x": 0.25}], storage=study_storage(tmp_path), study_name="exp")
    s.set_search_properties(None, None, {})
    first = s.suggest("t1")
    assert first == {"x": 0.25}  # the base point first
    s.on_trial_complete("t1", result={"score": 1.0, "final": True})
    again = optuna.load_study(study_name="exp", storage=study_storage(tmp_path))
    assert [t.state for t in again.trials] == [TrialState.COMPLETE] and again.trials[0].params == {"x": 0.25}


def test_objectives():
    assert objective("lift").metric == "lift_vs_sticky" and objective("lift").mode == "max"
    assert objective("multi").metric == ["val_loss", "time_per_session"]
    assert objective("multi").mode == ["min", "max"]


def test_base_point_inside_and_outside_the_space():
    spec = {"a": Param("choice", values=[1, 2]), "b": Param("int", low=2, high=8, step=2),
            "c": Param("loguniform", low=1e-4, high=1e-2)}
    assert base_point(spec, {"a": 2, "b": 4, "c": 1e-3}) == {"a": 2, "b": 4, "c": 1e-3}
    assert base_point(spec, {"a": 2, "b": 5, "c": 1e-3}) is None
    assert base_point(spec, {"a": 3, "b": 4, "c": 1e-3}) is None


def test_pareto_front():
    loss = np.array([0.1, 0.2, 0.3, 0.2])
    time = np.array([2.0, 3.0, 2.5, 2.0])
    # trial 2 is beaten by 1 (lower loss, more time); trial 3 by 0 (lower loss, same time)
    assert pareto_mask(loss, time).tolist() == [True, True, False, False]


def test_ranked_keeps_only_finished_trials_best_first():
    frame = pd.DataFrame({"trial_id": list("abcd"), "status": ["finished", "stopped", "finished", "errored"],
                          "score": [1.0, 9.0, 2.0, math.nan], "val_loss": [0.2, 0.1, 0.3, math.nan],
                          "time_per_session": [3.0, 3.5, 2.0, math.nan]})
    assert ranked(frame, objective("score"))["trial_id"].tolist() == ["c", "a"]
    assert ranked(frame, objective("val_loss"))["trial_id"].tolist() == ["a", "c"]
    assert ranked(frame, objective("multi"))["trial_id"].tolist() == ["a", "c"]


# ---------------------------------------------------------------- --warm-start


SPEC = {"model.norm": Param("choice", values=["none", "l2"]), "train.lr": Param("loguniform", low=1e-4, high=1e-2),
        "model.dense_depth": Param("int", low=1, high=3)}


def earlier_frame() -> pd.DataFrame:
    return pd.DataFrame([
        {"trial_id": "a", "status": "finished", "score": 90.0, "config/model.norm": "l2", "config/train.lr": 1e-3,
         "config/model.dense_depth": 2},
        {"trial_id": "b", "status": "stopped", "score": math.nan, "config/model.norm": "none",
         "config/train.lr": 5e-3, "config/model.dense_depth": 1, "rung_lift": 35.0, "training_iteration": 4},
        {"trial_id": "c", "status": "finished", "score": 70.0, "config/model.norm": "layernorm",  # not in the space
         "config/train.lr": 1e-3, "config/model.dense_depth": 2},
        {"trial_id": "d", "status": "errored", "score": math.nan, "config/model.norm": "l2",
         "config/train.lr": 1e-3, "config/model.dense_depth": 3},
    ])


def test_finished_become_complete_stopped_pruned_the_rest_skipped(tmp_path):
    trials = frozen_trials(earlier_frame(), SPEC, objective("score"))
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert trials[0].value == 90.0 and trials[0].params == {"model.norm": "l2", "train.lr": 1e-3, "model.dense_depth": 2}
    assert trials[1].intermediate_values == {4: 35.0}  # how far the stopped trial got, as a live run reports it
    assert seed_study(study_storage(tmp_path), "new", objective("score"), trials) == 2
    study = optuna.load_study(study_name="new", storage=study_storage(tmp_path))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert study.best_value == 90.0


def test_the_earlier_winner_is_the_first_trial_of_a_warm_start(tmp_path):
    frame = earlier_frame()
    assert warm_best(frame, SPEC, objective("score")) == {"model.norm": "l2", "train.lr": 1e-3, "model.dense_depth": 2}
    frame.loc[0, "config/model.norm"] = "layernorm"  # the winner lies outside the new space: no point
    assert warm_best(frame, SPEC, objective("score")) is None
    best = {"model.norm": "l2", "train.lr": 1e-3, "model.dense_depth": 2}
    s = build_searcher(SPEC, objective("score"), seed=0, max_concurrent=2, start_from=[best, best],
                       storage=study_storage(tmp_path), study_name="exp")
    s.set_search_properties(None, None, {})
    assert s.suggest("t1") == best and s.suggest("t2") != best  # a duplicate point runs once


def test_the_earlier_run_must_be_a_search_of_the_same_objective(tmp_path):
    with pytest.raises(WarmStartError, match="no search_run.json"):
        earlier_trials(tmp_path, "score")
    (tmp_path / "search_run.json").write_text(json.dumps({"objective": "val_loss"}))
    with pytest.raises(WarmStartError, match="--objective val_loss"):
        earlier_trials(tmp_path, "score")
    (tmp_path / "search_run.json").write_text(json.dumps({"objective": "score"}))
    earlier_frame().to_parquet(tmp_path / "trials.parquet")
    assert list(earlier_trials(tmp_path, "score")["trial_id"]) == ["a", "b", "c", "d"]


def test_the_cli_refuses_a_folder_that_is_not_a_search_before_ray_starts(tmp_path, capsys):
    from search.run import main

    code = main(["--smoke-test", "--storage-path", str(tmp_path / "runs"), "--name", "new",
                 "--warm-start", str(tmp_path)])
    assert code == 2 and "no search_run.json" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "new").exists()  # nothing half-written
