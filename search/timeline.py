"""The search over wall-clock time: when each trial ended (seconds since the search started) with
its lift, the best finished lift by a given time, and the time until a finished trial reached a
target lift. ``search.report`` draws them; ``benchmarks/bench_search.py`` compares runs with them.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

LIFT = "lift_vs_sticky"


def timeline(frame: pd.DataFrame, started_at: float | None = None) -> pd.DataFrame:
    """trial_id, status, end_s (since the search started), lift — ordered by end_s.

    ``started_at`` (Unix seconds, ``search_run.json``) defaults to the earliest trial start.
    """
    ended = frame[frame["timestamp"].notna()] if "timestamp" in frame else frame.iloc[0:0]
    if ended.empty:
        return pd.DataFrame(columns=["trial_id", "status", "end_s", LIFT])
    end = ended["timestamp"].astype(float)
    t0 = started_at if started_at is not None else float((end - ended["duration_s"].astype(float)).min())
    out = pd.DataFrame({"trial_id": ended["trial_id"], "status": ended["status"], "end_s": end - t0,
                        LIFT: ended[LIFT].astype(float) if LIFT in ended else np.nan})
    return out.sort_values("end_s", ignore_index=True)


def best_at(line: pd.DataFrame, seconds: float) -> float:
    """The best lift among trials finished by ``seconds`` (NaN when none had)."""
    done = line[(line["status"] == "finished") & (line["end_s"] <= seconds)][LIFT].dropna()
    return float(done.max()) if len(done) else math.nan


def time_to(line: pd.DataFrame, target: float) -> float:
    """Seconds until a finished trial first reached ``target`` lift (NaN if none did)."""
    hit = line[(line["status"] == "finished") & (line[LIFT] >= target)]
    return float(hit["end_s"].min()) if len(hit) else math.nan
