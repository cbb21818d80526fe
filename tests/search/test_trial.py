"""search.trial: one trial without Ray — data → train (rungs) → serving search → paired A/B."""
import dataclasses
import math

import pytest

from sim_bridge.contract.files import with_overrides

from search.config import EvalConfig, ObjectiveConfig, RungConfig, ServingSearchConfig
from search.trial import TrialSetup, prepare, run_trial


# ---------------------------------------------------------------- the pipeline


@pytest.fixture(scope="module")
def tiny_inputs(tiny_trial):
    setup = TrialSetup(EvalConfig(sessions=300, seed=11), ObjectiveConfig(),
                       rungs=RungConfig(epochs=[1, 2], sessions=200, seed=12),
                       serving_search=ServingSearchConfig(policies=["indexed", "i2i"], sessions=200, seed=13,
                                                          knobs={"k": [10, 20], "skip_artists": [0, 2]}, stepped=[]))
    return prepare(tiny_trial.simulator.world, tiny_trial.events, setup, tiny_trial.cfg.features), setup


def test_a_trial_is_deterministic_and_scores_its_paired_lift(tiny_trial, tiny_inputs):
    inputs, setup = tiny_inputs
    cfg = with_overrides(tiny_trial.cfg, {"train.max_epochs": 2})
    epochs = []
    first = run_trial(cfg, inputs, setup, on_epoch=lambda row, rung_lift: epochs.append((row["epoch"], rung_lift)))
    again = run_trial(cfg, inputs, setup)
    timing = ("train_seconds", "rung_seconds")
    same = {k: v for k, v in first.metrics.items() if k not in timing}
    assert same == {k: v for k, v in again.metrics.items() if k not in timing}  # same seed, same numbers
    m = first.metrics
    assert [e for e, _ in epochs] == list(range(1, m["epoch"] + 1)) and math.isfinite(epochs[0][1])
    assert m["lift_lower"] <= m["lift_vs_sticky"] <= m["lift_upper"] and m["final"] is True
    assert m["val_loss_rel"] == m["val_loss"] / cfg.model.margin
    assert m["score"] == m["lift_vs_sticky"] - m["val_loss_rel"]
    assert m["rung_lift"] == max(m["rung_lift_1"], m.get("rung_lift_2", -math.inf))
    assert first.cfg.serving.policy == m["serving/policy"] and m["serving_tried"] >= 2  # saved as served


def test_without_a_control_a_trial_is_trained_and_served_but_not_ab_tested(tiny_trial, tiny_inputs):
    inputs, _ = tiny_inputs
    out = run_trial(tiny_trial.cfg, dataclasses.replace(inputs, control=None), TrialSetup())
    assert "lift_vs_sticky" not in out.metrics and math.isnan(out.metrics["rung_lift"])
    assert out.cfg.serving == tiny_trial.cfg.serving and out.lists.user  # no serving search: as configured
    assert out.policy is not None and out.metrics["epoch"] == 1


def test_the_report_reuses_the_best_rungs_lists(tiny_trial, tiny_inputs, monkeypatch):
    import numpy as np

    from model import infer
    from search import serving_search

    inputs, setup = tiny_inputs
    # one rung (its weights are the final ones), serving per-track lists from the start
    cfg = with_overrides(tiny_trial.cfg, {"train.max_epochs": 1, "serving.policy": "i2i"})
    made = []
    real_of = infer.ItemNeighbours.of
    monkeypatch.setattr(serving_search.ItemNeighbours, "of", lambda *a, **kw: made.append(1) or real_of(*a, **kw))
    out = run_trial(cfg, inputs, setup)
    assert made == [1]  # the rung's lists, completed for the report
    fresh = infer.item_recommendations(out.model, out.data, k=out.cfg.serving.k)
    assert isinstance(out.lists.item, dict) and set(out.lists.item) == set(fresh)
    assert all(np.array_equal(out.lists.item[t], fresh[t]) for t in fresh)  # the served weights' own lists
