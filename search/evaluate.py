"""The simulated objective: a trial's recommendations, served as its ``serving`` config says
(indexed by default, as the seed served them), vs sticky_artist (paired).

Both policies run on the same simulated sessions (``Simulator.run`` with one seed gives the same
users, session starts and per-step draws to any policy: common random numbers), so the paired
lift is far less noisy than an unpaired A/B. The sticky_artist control is simulated **once** in
the driver and its sessions table is shared with every trial through Ray's object store.
A winner is still confirmed later by a fresh, unpaired A/B (``search.confirm``).
"""
from __future__ import annotations

import math

import pandas as pd

from sim_bridge.abtest import paired_lift
from sim_bridge.policies import Policy, StickyArtist
from sim_bridge.simulator import SimConfig, Simulator
from sim_bridge.world import World

from search.config import ObjectiveConfig

# Every report carries these keys (NaN until the trial's final report), so the scheduler and the
# searcher always find the metric they read.
OBJECTIVE_KEYS = ("time_per_session", "lift_vs_sticky", "lift_lower", "lift_upper", "val_loss_rel", "score")


def control_sessions(world: World, n_sessions: int, seed: int) -> pd.DataFrame:
    """sticky_artist's sessions on the evaluation seed; run once per search, in the driver."""
    return Simulator(world, SimConfig()).run(StickyArtist(world.catalog), n_sessions, seed).sessions


def paired_eval(world: World, control: pd.DataFrame, policy: Policy, seed: int,
                simulator: Simulator | None = None) -> dict:
    """Serve ``policy`` (the trial's recommendations) on the control's sessions; lift in %.

    ``simulator``: one of ``world`` to reuse (its start table is built once per instance).
    """
    n_sessions = len(control)  # one row per session
    treatment = (simulator or Simulator(world, SimConfig())).run(policy, n_sessions, seed)
    res = paired_lift(control, treatment.sessions)
    return {
        "time_per_session": float(res.treatment_mean),
        "control_time_per_session": float(res.control_mean),
        "lift_vs_sticky": float(res.effect),
        "lift_lower": float(res.lower),
        "lift_upper": float(res.upper),
        "lift_significant": bool(res.significant),
        "truncated_share": float(treatment.truncated_share),
    }


def score(lift_vs_sticky: float, val_loss_rel: float, weights: ObjectiveConfig) -> float:
    """``lift_weight * lift(%) - val_loss_weight * val_loss / margin``: higher is better.

    The lift is what the service is for; the validation loss is a small, noise-free tie-breaker.
    It enters divided by the triplet margin: the raw triplet loss scales with the margin (a
    collapsed model scores exactly ``margin``), so with ``model.margin`` in the space a raw
    val_loss term would reward small margins rather than better models. ``val_loss / margin``
    is 1.0 for a collapsed model and 0 when every validation triplet clears the margin.
    """
    value = weights.lift_weight * lift_vs_sticky - weights.val_loss_weight * val_loss_rel
    if not math.isfinite(value):
        raise FloatingPointError(f"score is not finite (lift={lift_vs_sticky}, val_loss_rel={val_loss_rel})")
    return float(value)
