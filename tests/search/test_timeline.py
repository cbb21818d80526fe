"""search.timeline: best lift by wall clock, time to a target, rung vs final lift."""
import math

import pandas as pd

from search.timeline import best_at, rung_correlations, time_to, timeline


def frame() -> pd.DataFrame:
    # four trials started at t0 = 1000 s; ends at +60, +90, +150, +200 s
    return pd.DataFrame({
        "trial_id": ["a", "b", "c", "d"], "status": ["finished", "stopped", "finished", "finished"],
        "timestamp": [1060.0, 1090.0, 1150.0, 1200.0], "duration_s": [60.0, 30.0, 100.0, 80.0],
        "lift_vs_sticky": [50.0, math.nan, 80.0, 70.0],
        "rung_lift_1": [40.0, 10.0, 75.0, 60.0], "rung_lift_3": [55.0, math.nan, 50.0, math.nan],
    })


def test_timeline_and_best_at():
    line = timeline(frame())  # t0 = the earliest start: min(1060 - 60, 1090 - 30, ...) = 1000
    assert line["end_s"].tolist() == [60.0, 90.0, 150.0, 200.0]
    assert math.isnan(best_at(line, 59.0))
    assert best_at(line, 60.0) == 50.0 and best_at(line, 100.0) == 50.0  # stopped trials have no lift
    assert best_at(line, 150.0) == 80.0 and best_at(line, 1e9) == 80.0
    assert timeline(frame(), started_at=960.0)["end_s"].tolist() == [100.0, 130.0, 190.0, 240.0]


def test_time_to_target():
    line = timeline(frame())
    assert time_to(line, 70.0) == 150.0 and time_to(line, 50.0) == 60.0 and math.isnan(time_to(line, 81.0))


def test_rung_correlations_use_finished_trials():
    table = rung_correlations(frame()).set_index("rung_epoch")
    # rung 1 over a, c, d: ranks (1, 3, 2) vs final (1, 3, 2): rho = 1
    assert table.loc[1, "trials"] == 3 and math.isclose(table.loc[1, "spearman"], 1.0)
    assert table.loc[3, "trials"] == 2 and math.isnan(table.loc[3, "spearman"])  # too few to rank
