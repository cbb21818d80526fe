"""The seed's A/B, unpaired, shared by ``search.confirm`` and ``search.seed_table``.

One simulated experiment of a treatment policy against sticky_artist (docs/ab_test.md): botify assigns
each user to arm C (control, sticky_artist) or T1 (the treatment) by murmurhash of the
experiment name and the user, 50/50; each arm serves its own sessions (no common random numbers,
unlike the search's paired objective); the course's table comes from per-user metrics with
Welch CIs. Rows in the seed's columns (``sim_bridge.abtest.TABLE_COLUMNS``).
"""
from __future__ import annotations

import time
import warnings

import pandas as pd

from sim_bridge import columns as C
from sim_bridge.abtest import SampleRatioMismatchWarning, ab_table, srm_check, user_metrics
from sim_bridge.experiment import simulate_experiment
from sim_bridge.policies import Policy, StickyArtist
from sim_bridge.simulator import Simulator
from sim_bridge.world import World

# The course's metrics (the seed's table); latency is 0 for simulated serving, so it is left out.
COURSE_METRICS = (C.TIME, C.SESSIONS, C.MEAN_TRACKS_PER_SESSION, C.MEAN_TIME_PER_SESSION)
CONTROL_NAME = "sticky_artist"


def unpaired_ab(world: World, treatment: Policy, experiment: str, n_sessions: int, seed: int,
                label: str) -> pd.DataFrame:
    """A fresh A/B of ``treatment`` (arm T1) vs sticky_artist (arm C) → one row per course metric.

    ``experiment`` names the botify experiment (it drives the user assignment); ``seed`` drives
    the simulation. A sample-ratio mismatch is printed, not raised (the table is still valid
    as a record, but should not be trusted).
    """
    t0 = time.perf_counter()
    arms = [StickyArtist(world.catalog), treatment]
    res = simulate_experiment(Simulator(world), arms, experiment, n_sessions, seed)
    users = user_metrics(res.sessions)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SampleRatioMismatchWarning)
        srm_check(users[C.ARM].value_counts().to_dict())
    for w in caught:
        print(f"  WARNING {experiment}: {w.message}", flush=True)
    table = ab_table(users, control="C", model_names={"T1": label}, metrics=COURSE_METRICS)
    row = table[table["metric"] == C.MEAN_TIME_PER_SESSION].iloc[0]
    print(f"  {label}: mean_time_per_session {row['effect']:+.2f}% [{row['lower']:+.2f}, {row['upper']:+.2f}] "
          f"(control {row['control_mean']:.3f}, treatment {row['treatment_mean']:.3f}), "
          f"{n_sessions} sessions, seed {seed}, {time.perf_counter() - t0:.1f}s", flush=True)
    return table
