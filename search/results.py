"""Results under the experiment folder: ``trials.parquet``, ``summary.md`` and ``best/``.

``trials.parquet``: one row per trial — ``trial_id``, ``status`` (finished | stopped | errored |
running | pending), ``duration_s``, ``config/<dotted key>`` for every sampled key, every metric of
the trial's last report (with ``rung_lift_<epoch>`` per rung and the chosen ``serving/<knob>``;
``timestamp``: when it last reported, Unix seconds), ``checkpoint`` (the folder of its final checkpoint, if any) and ``path``.
"stopped": the scheduler (ASHA) stopped it before its final report. "running"/"pending" after
the run ended: it was interrupted (Ctrl-C, killed driver); ``--resume`` reruns it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from ray.tune import ExperimentAnalysis

from sim_bridge.atomic import atomic_path, atomic_write_text

from search import artifacts
from search.searcher import Objective

TRIALS_FILE = "trials.parquet"
METRICS = ("val_loss", "val_loss_rel", "train_loss", "epoch", "time_per_session", "control_time_per_session",
           "lift_vs_sticky", "lift_lower", "lift_upper", "lift_significant", "score",
           "truncated_share", "train_seconds", "stopped_early", "device", "final", "training_iteration",
           "rung_lift", "rung_best_epoch", "rung_best_lift", "rung_seconds", "tuning_lift", "serving_tried",
           "timestamp")
PREFIXES = ("rung_lift_", "serving/")  # per-rung lifts and the serving a trial chose


def trials_frame(exp_dir: str | Path) -> pd.DataFrame:
    """Read every trial of a Tune experiment folder into one row each."""
    analysis = ExperimentAnalysis(str(exp_dir))
    rows = [_row(t) for t in analysis.trials]
    return pd.DataFrame(rows).sort_values("trial_id", ignore_index=True) if rows else pd.DataFrame()


def _row(trial) -> dict:
    last = trial.last_result or {}
    status = {"ERROR": "errored", "RUNNING": "running", "PAUSED": "running", "PENDING": "pending"}.get(trial.status)
    if status is None:
        status = "finished" if last.get("final") else "stopped"
    row = {"trial_id": trial.trial_id, "status": status, "duration_s": float(last.get("time_total_s", 0.0))}
    row.update({f"config/{k}": v for k, v in sorted(trial.config.items())})
    row.update({k: last.get(k) for k in METRICS})
    row.update({k: v for k, v in sorted(last.items()) if k.startswith(PREFIXES)})
    ckpt = trial.checkpoint
    row["checkpoint"] = ckpt.path if (ckpt is not None and last.get("final")) else None
    row["path"] = trial.path
    return row


def write_trials(frame: pd.DataFrame, exp_dir: str | Path) -> Path:
    """``trials.parquet`` (atomic); object columns of mixed types are stored as strings."""
    path = Path(exp_dir) / TRIALS_FILE
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object and col.startswith("config/"):
            out[col] = out[col].map(lambda v: v if v is None else str(v)) if _mixed(out[col]) else out[col]
    with atomic_path(path) as tmp:
        out.to_parquet(tmp, index=False)
    return path


def _mixed(col: pd.Series) -> bool:
    return len({type(v) for v in col if v is not None}) > 1


def ranked(frame: pd.DataFrame, obj: Objective) -> pd.DataFrame:
    """Finished trials, best first (``multi``: the Pareto front first, then by time per session)."""
    done = frame[frame["status"] == "finished"].copy()
    if done.empty:
        return done
    if obj.multi:
        done["pareto"] = pareto_mask(done["val_loss"].to_numpy(float), done["time_per_session"].to_numpy(float))
        return done.sort_values(["pareto", "time_per_session"], ascending=[False, False], ignore_index=True)
    return done.sort_values(obj.metric, ascending=obj.mode == "min", ignore_index=True)


def pareto_mask(loss: np.ndarray, time: np.ndarray) -> np.ndarray:
    """True where no other trial has loss ≤ and time ≥ with one strictly better."""
    better_or_eq = (loss[None, :] <= loss[:, None]) & (time[None, :] >= time[:, None])
    strictly = (loss[None, :] < loss[:, None]) | (time[None, :] > time[:, None])
    return ~(better_or_eq & strictly).any(axis=1)


def write_summary(frame: pd.DataFrame, obj: Objective, exp_dir: str | Path, header: str = "") -> Path:
    """``summary.md``: counts and the top-10 table (the Pareto front marked in multi mode)."""
    best = ranked(frame, obj).head(10)
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    cols = ["trial_id", "score", "lift_vs_sticky", "lift_lower", "lift_upper", "time_per_session",
            "val_loss", "epoch", "duration_s"] + (["pareto"] if obj.multi else [])
    cols += [c for c in best.columns if c.startswith("config/")]
    lines = [f"# Search summary\n", header, f"Objective: `{obj.metric}` ({obj.mode}). "
             f"Trials: {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}.\n"]
    lines.append(_markdown(best[[c for c in cols if c in best.columns]]) if not best.empty else "No finished trials.")
    path = Path(exp_dir) / "summary.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _markdown(frame: pd.DataFrame) -> str:
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v)
    head = "| " + " | ".join(c.removeprefix("config/") for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def export_row(row: pd.Series, out: str | Path) -> Path:
    """Export one finished trial (a row of trials.parquet) to ``out``."""
    if not isinstance(row.get("checkpoint"), str) or not row["checkpoint"]:  # None/NaN after Parquet
        raise ValueError(f"trial {row['trial_id']} has no final checkpoint (status {row['status']})")
    metrics = {k: row[k] for k in row.index if not k.startswith("config/") and k not in ("checkpoint", "path")}
    return artifacts.export_trial(row["checkpoint"], metrics, out)
