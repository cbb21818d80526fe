"""A real but tiny Tune function trainable for the Ray-wiring tests (no model, no simulator).

It reports like search.trainable does (per-epoch with ``final = False``, then a final report),
raises for ``model.hidden_dim == 13`` and appends its trial id to ``$FAKE_TRIAL_LOG`` once per
start, so tests can see which trials ran (and that a resume reran none of the finished ones).
"""
import math
import os
import time

from ray import tune

from search.trial import OBJECTIVE_KEYS


def fake_trial(config, epochs: int = 2, sleep: float = 0.0):
    with open(os.environ["FAKE_TRIAL_LOG"], "a") as fh:
        fh.write(tune.get_context().get_trial_id() + "\n")
    if config.get("model.hidden_dim") == 13:
        raise RuntimeError("boom: this configuration always fails")
    x = float(config["train.lr"])
    for epoch in range(1, epochs + 1):
        time.sleep(sleep)
        tune.report({"epoch": epoch, "val_loss": x / epoch, **dict.fromkeys(OBJECTIVE_KEYS, math.nan), "final": False})
    lift = 10.0 - 100 * x
    tune.report({"epoch": epochs, "val_loss": x / epochs, "time_per_session": 3.0 + lift / 100,
                 "lift_vs_sticky": lift, "lift_lower": lift - 1, "lift_upper": lift + 1,
                 "score": lift - x, "final": True})
