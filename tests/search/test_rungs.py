"""search.rungs: the rung lift measured after some epochs, the stop rule, the best rung kept."""
import math

import pytest
import torch

from sim_bridge.contract.files import ConfigError
from sim_bridge.contract.recs import ServingConfig

from search.config import RungConfig, ServingSearchConfig
from search.rungs import RungWatcher
from search.serving_search import ServingTuner

# a small grid: the whole serving search on a tiny world in a few seconds
SMALL_GRID = {"k": [100, 200], "like_threshold": [0.3, 0.5, 0.7, 0.9], "skip_artists": [0, 1, 2, 3, 5]}


class ScriptedTuner(ServingTuner):
    """A real tuner (real lists, real simulator) whose lifts follow a script, to drive the decisions."""

    def __init__(self, trial, lifts):
        cfg = ServingSearchConfig(policies=["i2i"], knobs={}, stepped=[], sessions=50, seed=1)
        super().__init__(cfg, trial.simulator, trial.control(50, 1), 1)
        self.script = list(lifts)

    def lift(self, serving, lists):
        return self.script.pop(0)


def test_rung_lifts_at_rung_epochs_only(tiny_trial):
    cfg = RungConfig(epochs=[1, 3], sessions=300, seed=9, first_rung="search")
    tuner = ServingTuner(ServingSearchConfig(policies=["indexed", "i2i"], knobs=SMALL_GRID, stepped=[], sessions=300, seed=9), tiny_trial.simulator,
                         tiny_trial.control(300, 9), 9)
    w = RungWatcher(cfg, tuner, tiny_trial.data, ServingConfig("i2i", k=20))
    assert math.isnan(w.latest) and not w.plateaued()
    lift = w.observe(1, tiny_trial.model)
    assert tiny_trial.model.training  # back in training mode (inference switched it to eval)
    assert w.observe(2, tiny_trial.model) is None  # not a rung
    assert w.lifts == {1: lift} and w.latest == lift and w.best_epoch == 1
    # the first rung's measurement is the serving search's choice on the rung seed, reproducible
    # exactly: each policy at its best knobs, at least as good as each at the start's knobs
    lists = tuner.lists(tiny_trial.model, tiny_trial.data, min_k=20)
    assert lift == tuner.search(lists, ServingConfig("i2i", k=20)).lift == tuner.lift(w.serving, lists)
    assert lift >= max(tuner.lift(ServingConfig(p, k=20), lists) for p in ("indexed", "i2i"))
    assert w.serving.policy in ("indexed", "i2i")
    assert w.metrics()["rung_lift_1"] == lift and w.metrics()["rung_seconds"] > 0


def _first_rung(trial, first_rung: str):
    """(watcher, its first rung lift, its tuner, its start): candidates indexed and i2i, starting from i2i."""
    cfg = RungConfig(epochs=[1, 3], sessions=300, seed=9, first_rung=first_rung)
    tuner = ServingTuner(ServingSearchConfig(policies=["indexed", "i2i"], knobs=SMALL_GRID, stepped=[], sessions=300, seed=9), trial.simulator,
                         trial.control(300, 9), 9)
    start = ServingConfig("i2i", k=20, like_threshold=0.9, skip_artists=3)
    w = RungWatcher(cfg, tuner, trial.data, start)
    return w, w.observe(1, trial.model), tuner, start


def test_the_first_rung_can_choose_the_policy_alone(tiny_trial):
    w, lift, tuner, _ = _first_rung(tiny_trial, "policies")
    lists = tuner.lists(tiny_trial.model, tiny_trial.data, min_k=20)
    # one simulation per policy, at the start's knobs (not tuned): the best of them
    by_policy = {p: tuner.lift(ServingConfig(p, k=20, like_threshold=0.9, skip_artists=3), lists) for p in ("indexed", "i2i")}
    assert lift == max(by_policy.values()) and w.serving.policy == max(by_policy, key=by_policy.get)
    assert (w.serving.k, w.serving.like_threshold, w.serving.skip_artists) == (20, 0.9, 3)
    with pytest.raises(ConfigError, match="rungs.first_rung"):
        RungConfig(first_rung="all")


def test_the_first_rung_can_serve_the_start_as_it_is(tiny_trial):
    w, lift, tuner, start = _first_rung(tiny_trial, "start")
    # one simulation: the start's serving, whatever the other candidate policies would score
    assert w.serving == start and lift == tuner.lift(start, tuner.lists(tiny_trial.model, tiny_trial.data, min_k=20))
    assert w.best_lists.user is None  # i2i reads per-track lists only: no per-user lists computed


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


def test_stop_reasons_of_the_watcher(tiny_trial):
    w = RungWatcher(RungConfig(epochs=[1, 2, 3], patience=1), ScriptedTuner(tiny_trial, [10.0, 10.5, 30.0]),
                    tiny_trial.data, ServingConfig("i2i"))
    assert w.stop_reason() is None
    w.observe(1, tiny_trial.model)
    assert w.stop_reason() is None
    w.observe(2, tiny_trial.model)  # +0.5 < min_improvement 1.0: one bad rung = patience
    assert w.stop_reason() == "rung_plateau" and w.plateaued()
    last = RungWatcher(RungConfig(epochs=[1, 2], patience=5), ScriptedTuner(tiny_trial, [1.0, 5.0]), tiny_trial.data,
                       ServingConfig("i2i"))
    last.observe(1, tiny_trial.model)
    last.observe(2, tiny_trial.model)
    assert last.stop_reason() == "max_epochs"  # the last rung ends training: nothing plateaued


def _trained(tiny_trial, overrides, script, rungs):
    from sim_bridge.contract.files import with_overrides

    from model.train import train
    from search.trial import _rung_hook

    cfg = with_overrides(tiny_trial.cfg, overrides)
    w = RungWatcher(rungs, ScriptedTuner(tiny_trial, script), tiny_trial.data, ServingConfig("i2i"))
    return train(cfg, tiny_trial.data, device="cpu", after_epoch=_rung_hook(w, lambda row, rung_lift=math.nan: None))


def test_a_rung_plateau_ends_training_with_its_reason(tiny_trial):
    res = _trained(tiny_trial, {"train.max_epochs": 4, "train.patience": 10},
                   [10.0, 10.5], RungConfig(epochs=[1, 2, 3, 4], patience=1))
    assert res.epochs == 2 and res.stop_reason == "rung_plateau"


def test_val_loss_early_stopping_ends_a_trial_between_rungs(tiny_trial):
    # rungs at 1 and 4 keep improving, but no epoch beats the best val loss by min_delta 0.5: patience 2
    # ends training at epoch 3, before the rung at 4 is measured
    res = _trained(tiny_trial, {"train.max_epochs": 4, "train.patience": 2, "train.min_delta": 0.5},
                   [10.0, 50.0], RungConfig(epochs=[1, 4], patience=1))
    assert res.epochs == 3 and res.stop_reason == "early_stopping"
