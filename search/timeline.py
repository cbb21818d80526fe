"""A search over wall-clock time, and how well its rungs predicted the end.

From ``trials.parquet`` (each trial's last ``timestamp`` and ``duration_s``) and the run's start:

* :func:`timeline` — when each trial ended, in seconds since the search started, and its lift;
* :func:`best_at` — the best finished lift reached by a given time (the time-to-target curve);
* :func:`rung_correlations` — per rung epoch, the Spearman correlation between the finished
  trials' rung lift (a few thousand sessions of the rung seed) and their final paired lift (the
  evaluation seed): how well the cheap measurement the scheduler acts on predicts the objective.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

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


def rung_correlations(frame: pd.DataFrame) -> pd.DataFrame:
    """rung epoch, trials, Spearman rho and its p-value, rung vs final lift (finished trials)."""
    done = frame[frame["status"] == "finished"]
    rows = []
    cols = sorted((c for c in frame.columns if c.startswith("rung_lift_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    for col in cols:
        pair = done[[col, LIFT]].dropna()
        rho, p = (stats.spearmanr(pair[col], pair[LIFT]) if len(pair) >= 3 and pair[col].nunique() > 1
                  else (math.nan, math.nan))
        rows.append({"rung_epoch": int(col.rsplit("_", 1)[1]), "trials": len(pair),
                     "spearman": float(rho), "p_value": float(p)})
    return pd.DataFrame(rows, columns=["rung_epoch", "trials", "spearman", "p_value"])
