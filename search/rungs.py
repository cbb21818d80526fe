"""Rungs: multi-fidelity on the objective itself.

After each epoch in ``rungs.epochs`` the current model is served on a few thousand sessions of the
rung seed, paired with that seed's sticky_artist control: the *rung lift*. The first rung chooses
the serving (``rungs.first_rung``: the config's serving as it starts, the best candidate policy at
its knobs, or the whole serving search); later rungs serve that choice. A trial stops when its rung
lift stops improving and keeps the weights of its best rung (the per-epoch validation loss does
not predict the lift), with that rung's lists: the trial's report serves the same weights, so
the lists it computed are not computed again.
"""
from __future__ import annotations

import copy
import math
import time

from sim_bridge.contract.recs import ServingConfig

from search.config import RungConfig
from search.serving_search import Lists, ServingTuner


class RungWatcher:
    """Called after every epoch; measures the rung lift at rung epochs and says when to stop."""

    def __init__(self, cfg: RungConfig, tuner: ServingTuner, data, serving: ServingConfig, device: str = "cpu"):
        self.cfg, self.tuner, self.data, self.device = cfg, tuner, data, device
        self.serving = serving  # the serving chosen at the first rung
        self.lifts: dict[int, float] = {}  # epoch → rung lift
        self.best_lift, self.best_epoch, self.best_state = -math.inf, 0, None
        self.best_lists: Lists | None = None  # the best rung's lists (the trial's report reuses them)
        self.seconds = 0.0  # spent measuring rungs
        self.bad_rungs = 0

    def observe(self, epoch: int, model) -> float | None:
        """At a rung epoch: the rung lift of ``model`` (also remembered); else None."""
        if epoch not in self.cfg.epochs:
            return None
        t0 = time.perf_counter()
        # the first rung chooses the serving (unless first_rung is "start"); later rungs serve
        # that choice only: one simulation, reading the per-track lists of its anchors only
        fixed = bool(self.lifts) or self.cfg.first_rung == "start"
        policies = [self.serving.policy] if fixed else None
        lists = self.tuner.lists(model, self.data, self.device, self.serving.k, policies)
        if fixed or self.cfg.first_rung == "policies":
            choice = self.tuner.best_policy(lists, self.serving, policies)
        else:
            choice = self.tuner.search(lists, self.serving)
        model.train()  # back to training mode (inference switched it to eval)
        self.serving, self.lifts[epoch] = choice.serving, choice.lift
        self.bad_rungs = 0 if choice.lift >= self.best_lift + self.cfg.min_improvement else self.bad_rungs + 1
        if choice.lift > self.best_lift:
            self.best_lift, self.best_epoch = choice.lift, epoch
            self.best_state, self.best_lists = copy.deepcopy(model.state_dict()), lists
        self.seconds += time.perf_counter() - t0
        return choice.lift

    @property
    def latest(self) -> float:
        """The latest rung lift (NaN before the first rung)."""
        return self.lifts[max(self.lifts)] if self.lifts else math.nan

    def plateaued(self) -> bool:
        """True after ``patience`` rungs in a row without a ``min_improvement`` gain, or past the last rung."""
        return self.stop_reason() is not None

    def stop_reason(self) -> str | None:
        """Why the trial should stop now: ``"rung_plateau"`` (``patience`` rungs without a
        ``min_improvement`` gain), ``"max_epochs"`` (the last rung reached: the rungs' own end of
        training), else None."""
        if not self.lifts:
            return None
        if self.bad_rungs >= self.cfg.patience:
            return "rung_plateau"
        return "max_epochs" if max(self.lifts) >= self.cfg.epochs[-1] else None

    def restore_best(self, model) -> Lists | None:
        """Load the weights of the best rung into ``model`` (no-op before the first rung); that
        rung's lists (None before the first rung)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        model.eval()
        return self.best_lists

    def metrics(self) -> dict:
        """``rung_lift_<epoch>`` per rung, the best rung and the seconds the rungs took."""
        out = {f"rung_lift_{e}": v for e, v in self.lifts.items()}
        out.update(rung_best_epoch=self.best_epoch, rung_best_lift=self.best_lift if self.lifts else math.nan,
                   rung_seconds=self.seconds)
        return out
