"""A status table printed each time a trial ends (Ray's dashboard has no per-trial view).

Per-trial curves go to TensorBoard through Tune's TBX logger (``tensorboard --logdir RUN_DIR``).
"""
from __future__ import annotations

import math

from ray import tune

from search.searcher import Objective

SHOWN = ("val_loss", "time_per_session", "lift_vs_sticky", "lift_lower", "lift_upper", "score")


class StatusTable(tune.Callback):
    """Prints the finished/stopped/errored counts and the best trials so far."""

    def __init__(self, obj: Objective, top: int = 5):
        self.obj = obj
        self.top = top

    def on_trial_complete(self, iteration, trials, trial, **info):
        print(render(trials, self.obj, self.top, ended={trial.trial_id: "TERMINATED"}), flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        print(f"trial {trial.trial_id} errored (see {trial.path}/error.txt); the search goes on", flush=True)
        print(render(trials, self.obj, self.top, ended={trial.trial_id: "ERROR"}), flush=True)


def sort_key(obj: Objective):
    """Best first: by the objective (``multi``: by time per session)."""
    metric = "time_per_session" if obj.multi else obj.metric
    sign = 1.0 if (obj.multi or obj.mode == "max") else -1.0
    return lambda result: -sign * result[metric]


def render(trials, obj: Objective, top: int, ended: dict | None = None) -> str:
    """The counts line and a small table of the best finished trials.

    ``ended`` gives the status of the trial being reported (Tune calls back before updating it).
    """
    status = {t.trial_id: (ended or {}).get(t.trial_id, t.status) for t in trials}
    final = [t for t in trials if t.last_result.get("final")]
    counts = {s: sum(v == s for v in status.values()) for s in ("RUNNING", "PENDING", "TERMINATED", "ERROR")}
    stopped = sum(status[t.trial_id] == "TERMINATED" and not t.last_result.get("final") for t in trials)
    lines = [f"trials: {len(final)} finished, {stopped} stopped early, "
             f"{counts['ERROR']} errored, {counts['RUNNING']} running, {counts['PENDING']} pending"]
    best = sorted(final, key=lambda t: sort_key(obj)(t.last_result))[:top]
    if best:
        lines.append("  trial_id   " + " ".join(f"{k:>16}" for k in SHOWN))
        for t in best:
            lines.append(f"  {t.trial_id:<10} " + " ".join(_fmt(t.last_result.get(k)) for k in SHOWN))
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float) and not math.isnan(value):
        return f"{value:>16.4f}"
    return f"{str(value):>16}"
