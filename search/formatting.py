"""How a trial reads as text, the same on the console and in ``summary.md``: numbers as ``:.3g``,
a lift with its 95% CI, the serving a trial chose, and its cells under :data:`PROGRESS_COLUMNS`
(the status table :mod:`search.progress` prints, and ``summary.md``'s top 10 in :mod:`search.trials`).

Kept apart from :mod:`search.progress` so that writing ``summary.md`` does not import Ray.
"""
from __future__ import annotations

import math

import numpy as np

PROGRESS_COLUMNS = ("trial", "state", "epochs", "rung_lift", "lift_vs_sticky [95% CI]", "serving", "val_loss",
                    "stop_reason")


def fmt(value, digits: int = 3) -> str:
    """A number as ``:.{digits}g`` (a weight decay of 1e-6 reads ``1e-06``, not ``0.0000``); NaN
    and None as ``-``; anything else as text."""
    if value is None or (isinstance(value, (float, np.floating)) and not math.isfinite(value)):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating, int, np.integer)):
        return f"{value:.{digits}g}"
    return str(value)


def lift_text(lift, lower, upper) -> str:
    """``+95.3 [+90.1, +100.2]`` (%; ``-`` before the final report)."""
    if not all(isinstance(v, (int, float, np.number)) and math.isfinite(v) for v in (lift, lower, upper)):
        return "-"
    return f"{lift:+.1f} [{lower:+.1f}, {upper:+.1f}]"


def serving_text(result) -> str:
    """The serving a trial chose: its policy and the knobs that policy reads (``i2i k=200 like=0.5
    skip=1``); ``-`` before the trial chose one. ``result``: a report or a trials.parquet row."""
    from sim_bridge.policy_specs import POLICY_KNOBS

    policy = result.get("serving/policy")
    if not isinstance(policy, str) or not policy:
        return "-"
    short = {"like_threshold": "like", "skip_artists": "skip"}
    knobs = POLICY_KNOBS.get(policy, ("k", "like_threshold", "skip_artists"))
    parts = [f"{short.get(k, k)}={fmt(result.get(f'serving/{k}'))}" for k in knobs if result.get(f"serving/{k}") is not None]
    return " ".join([policy, *parts])


def progress_cells(trial_id: str, state: str, result) -> list[str]:
    """One trial's cells under :data:`PROGRESS_COLUMNS`; ``result`` its last report or its
    trials.parquet row (``stop_reason`` read from it)."""
    epochs = result.get("epoch")
    return [str(trial_id), state, fmt(epochs), fmt(result.get("rung_lift"), 4),
            lift_text(result.get("lift_vs_sticky"), result.get("lift_lower"), result.get("lift_upper")),
            serving_text(result), fmt(result.get("val_loss"), 4), fmt(result.get("stop_reason"))]


def logs_text(logs: str, arms: list[str] | None) -> str:
    """One line saying which training logs a search read and whether their logging policies read
    the simulator's hidden truth (``arms``: the logging run's policies; None for given logs)."""
    from sim_bridge.policy_specs import reads_hidden_truth

    if arms is None:
        return f"training logs: {logs} (given: their logging policies are not recorded here)"
    hidden = [arm for arm in arms if reads_hidden_truth(arm)]
    said = f"training logs: {logs}, written by {', '.join(arms)}"
    if hidden:
        return (f"{said} — HIDDEN-LIST LOGS: {len(hidden)} of {len(arms)} arms read the simulator's hidden "
                f"truth ({', '.join(sorted(set(hidden)))}); a real service's logs cannot hold that")
    return f"{said} (public policies only)"
