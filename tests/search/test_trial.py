"""search.trial: one trial without Ray — the pipeline, the rungs, the serving search, the data cache."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from model.features import FeatureConfig, build_training_data
from sim_bridge.contract.recs import ServingConfig
from tests.synthetic import synthetic_catalog, synthetic_events
from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import Catalog
from sim_bridge.contract.files import with_overrides

from search.config import EvalConfig, ObjectiveConfig, RungConfig, ServingSearchConfig
from search.trial import (Lists, RungWatcher, ServingTuner, TrialSetup, data_digest, prepare, run_trial, source_digest,
                          training_data)


# ---------------------------------------------------------------- the pipeline


@pytest.fixture(scope="module")
def tiny_inputs(tiny_trial):
    setup = TrialSetup(EvalConfig(sessions=300, seed=11), ObjectiveConfig(),
                       rungs=RungConfig(epochs=[1, 2], sessions=200, seed=12),
                       serving_search=ServingSearchConfig(policies=["indexed", "i2i"], sessions=200, seed=13,
                                                          knobs={"k": [10, 20], "skip_artists": [0, 2]}))
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


# ---------------------------------------------------------------- the serving search


def tuner_for(trial, cfg: ServingSearchConfig) -> ServingTuner:
    return ServingTuner(cfg, trial.simulator, trial.control(cfg.sessions, cfg.seed), cfg.seed)


def test_the_search_keeps_the_best_serving_it_measured(tiny_trial):
    cfg = ServingSearchConfig(policies=["indexed", "i2i"], sessions=400, seed=5,
                              knobs={"k": [5, 20], "like_threshold": [0.3, 0.9], "skip_artists": [0, 2]})
    tuner = tuner_for(tiny_trial, cfg)
    lists = tuner.lists(tiny_trial.model, tiny_trial.data)
    start = ServingConfig("indexed", k=20)
    first = tuner.best_policy(lists, start)
    choice = tuner.search(lists, start)
    assert choice.lift >= first.lift  # coordinate descent starts from the best policy
    assert choice.lift == tuner.lift(choice.serving, lists)  # same seed, same sessions: exact
    # the policy, then each knob the chosen policy reads (indexed reads only k)
    knobs = ["k"] if first.serving.policy == "indexed" else ["k", "like_threshold", "skip_artists"]
    assert choice.tried <= 2 + sum(len(cfg.knobs[k]) for k in knobs)
    assert choice.serving.policy == first.serving.policy


def test_a_policy_is_tried_only_with_the_knobs_it_reads(tiny_trial):
    cfg = ServingSearchConfig(policies=["indexed"], sessions=300, seed=6,
                              knobs={"k": [5, 10], "like_threshold": [0.3, 0.9]})
    tuner = tuner_for(tiny_trial, cfg)
    choice = tuner.search(tuner.lists(tiny_trial.model, tiny_trial.data), ServingConfig("indexed", k=10))
    assert choice.tried == 2  # indexed with k 10 (the start), then k 5; like_threshold is not its knob
    assert choice.serving.like_threshold == 0.5


def test_lists_are_cut_to_each_candidate_k():
    lists = Lists({1: np.arange(10)}, {2: np.arange(20, 30)})
    cut = lists.truncated(3)
    assert cut.user[1].tolist() == [0, 1, 2] and cut.item[2].tolist() == [20, 21, 22]
    assert Lists(None, {2: np.arange(4)}).truncated(2).user is None


# ---------------------------------------------------------------- rungs


class ScriptedTuner(ServingTuner):
    """A real tuner (real lists, real simulator) whose lifts follow a script, to drive the decisions."""

    def __init__(self, trial, lifts):
        cfg = ServingSearchConfig(policies=["i2i"], knobs={}, sessions=50, seed=1)
        super().__init__(cfg, trial.simulator, trial.control(50, 1), 1)
        self.script = list(lifts)

    def lift(self, serving, lists):
        return self.script.pop(0)


def test_rung_lifts_at_rung_epochs_only(tiny_trial):
    cfg = RungConfig(epochs=[1, 3], sessions=300, seed=9)
    tuner = ServingTuner(ServingSearchConfig(policies=["indexed", "i2i"], sessions=300, seed=9), tiny_trial.simulator,
                         tiny_trial.control(300, 9), 9)
    w = RungWatcher(cfg, tuner, tiny_trial.data, ServingConfig("i2i", k=20))
    assert math.isnan(w.latest) and not w.plateaued()
    lift = w.observe(1, tiny_trial.model)
    assert tiny_trial.model.training  # back in training mode (inference switched it to eval)
    assert w.observe(2, tiny_trial.model) is None  # not a rung
    assert w.lifts == {1: lift} and w.latest == lift and w.best_epoch == 1
    # the measurement is the best policy's paired lift on the rung seed, reproducible exactly
    lists = tuner.lists(tiny_trial.model, tiny_trial.data, min_k=20)
    assert lift == max(tuner.lift(ServingConfig(p, k=20), lists) for p in ("indexed", "i2i"))
    assert w.serving.policy in ("indexed", "i2i")
    assert w.metrics()["rung_lift_1"] == lift and w.metrics()["rung_seconds"] > 0


def test_a_trial_stops_when_its_rung_lift_stops_improving(tiny_trial):
    cfg = RungConfig(epochs=[1, 2, 3, 4, 5], patience=2, min_improvement=1.0)
    w = RungWatcher(cfg, ScriptedTuner(tiny_trial, [10.0, 12.0, 12.5, 11.0, 30.0]), tiny_trial.data, ServingConfig("i2i"))
    stops = []
    for epoch in range(1, 6):
        w.observe(epoch, tiny_trial.model)
        stops.append(w.plateaued())
    # +2 improves; +0.5 is below min_improvement (1 bad rung); a drop is the 2nd: stop at epoch 4
    assert stops[:4] == [False, False, False, True]
    assert w.best_epoch == 5 and w.best_lift == 30.0


def test_training_ends_at_the_last_rung(tiny_trial):
    w = RungWatcher(RungConfig(epochs=[1, 2], patience=5), ScriptedTuner(tiny_trial, [1.0, 5.0]), tiny_trial.data,
                    ServingConfig("i2i"))
    w.observe(1, tiny_trial.model)
    assert not w.plateaued()
    w.observe(2, tiny_trial.model)
    assert w.plateaued()


def test_the_best_rung_weights_are_restored(tiny_trial):
    model = tiny_trial.model
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    w = RungWatcher(RungConfig(epochs=[1, 2]), ScriptedTuner(tiny_trial, [20.0, 5.0]), tiny_trial.data,
                    ServingConfig("i2i"))
    try:
        w.observe(1, model)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)  # "another epoch"
        w.observe(2, model)  # worse: not kept
        w.restore_best(model)
        assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved)
        assert not model.training
    finally:
        model.load_state_dict(saved)


# ---------------------------------------------------------------- the training-data cache


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(getattr(a, f.name)), np.asarray(getattr(b, f.name)))
               for f in dataclasses.fields(a))


def test_built_once_then_loaded_identical(tmp_path):
    catalog = synthetic_catalog(200, n_genres=4, seed=2)
    events = synthetic_events(catalog, n_users=40, n_events=2000, seed=2)
    feats, source = FeatureConfig(min_positives=1), source_digest(events, catalog)
    first = training_data(events, catalog, feats, tmp_path, source)
    (path,) = tmp_path.glob("*.npz")
    assert path.stem == data_digest(feats, source)
    again = training_data(events, catalog, feats, tmp_path, source)
    assert _same(first, again) and _same(first, build_training_data(events, catalog, feats))
    assert isinstance(again.n_tracks, int)
    training_data(events, catalog, FeatureConfig(min_positives=2), tmp_path, source)  # another setting
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert source_digest(events.iloc[:-1], catalog) != source


def test_the_same_logs_with_other_genre_labels_get_their_own_training_data(tmp_path):
    catalog = synthetic_catalog(200, n_genres=4, seed=2)
    events = synthetic_events(catalog, n_users=40, n_events=2000, seed=2)
    tracks = catalog.tracks.copy()
    tracks[C.GENRE] = tracks[C.GENRE].iloc[::-1].to_numpy()  # same tracks, artists and logs; other labels
    relabelled, feats = Catalog(tracks), FeatureConfig(min_positives=1)
    first = training_data(events, catalog, feats, tmp_path, source_digest(events, catalog))
    second = training_data(events, relabelled, feats, tmp_path, source_digest(events, relabelled))
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert _same(second, build_training_data(events, relabelled, feats)) and not _same(first, second)


def test_a_damaged_file_is_rebuilt(tmp_path):
    catalog = synthetic_catalog(100, n_genres=3, seed=3)
    events = synthetic_events(catalog, n_users=20, n_events=800, seed=3)
    feats, source = FeatureConfig(min_positives=1), source_digest(events, catalog)
    path = tmp_path / f"{data_digest(feats, source)}.npz"
    path.write_bytes(b"not a zip")
    data = training_data(events, catalog, feats, tmp_path, source)
    assert _same(data, build_training_data(events, catalog, feats))
    assert path.stat().st_size > 100  # replaced by a good file
