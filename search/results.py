"""Results under the experiment folder: ``trials.parquet``, ``summary.md`` and ``best/``.

``trials.parquet``: one row per trial — ``trial_id``, ``status`` (finished | stopped | errored |
running | pending), ``duration_s``, ``config/<dotted key>`` for every sampled key, every metric of
the trial's last report (with ``rung_lift_<epoch>`` per rung and the chosen ``serving/<knob>``;
``timestamp``: when it last reported, Unix seconds), ``checkpoint`` (the folder of its final checkpoint, if any) and ``path``.
"stopped": the scheduler (ASHA) stopped it before its final report. "running"/"pending" after
the run ended: it was interrupted (Ctrl-C, killed driver); ``--resume`` reruns it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from ray.tune import ExperimentAnalysis

from sim_bridge.contract.files import atomic_dir, atomic_path, atomic_write_text

from search import artifacts
from search.errors import SearchError
from search.searcher import Objective

TRIALS_FILE = "trials.parquet"
RUN_FILE = "search_run.json"  # the run's settings (absolute paths), read back by --resume, confirm, export
METRICS = ("val_loss", "val_loss_rel", "train_loss", "epoch", "time_per_session", "control_time_per_session",
           "lift_vs_sticky", "lift_lower", "lift_upper", "lift_significant", "score",
           "truncated_share", "train_seconds", "stopped_early", "device", "final", "training_iteration",
           "rung_lift", "rung_best_epoch", "rung_best_lift", "rung_seconds", "tuning_lift", "serving_tried",
           "timestamp")
PREFIXES = ("rung_lift_", "serving/")  # per-rung lifts and the serving a trial chose


COLUMNS = ("trial_id", "status", "duration_s")  # present even when there are no trials


def trials_frame(exp_dir: str | Path) -> pd.DataFrame:
    """Read every trial of a Tune experiment folder into one row each.

    Reading Tune's state unpickles files of the experiment folder: only read folders you made.
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise SearchError(f"{exp_dir}: no such experiment folder")
    if not any(exp_dir.glob("experiment_state-*.json")):
        raise SearchError(f"{exp_dir}: no Tune experiment state in it (not a search.run experiment, "
                          "or its search never started)")
    try:
        analysis = ExperimentAnalysis(str(exp_dir))
    except (ValueError, OSError, KeyError, EOFError) as exc:
        raise SearchError(f"{exp_dir}: Tune's experiment state is unreadable ({exc})") from None
    rows = [_row(t) for t in analysis.trials]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(COLUMNS))
    return frame.sort_values("trial_id", ignore_index=True)


def load_trials(exp_dir: str | Path) -> pd.DataFrame:
    """``trials.parquet`` when the run wrote it, otherwise Tune's own files; never an empty table."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise SearchError(f"{exp_dir}: no such experiment folder")
    path = exp_dir / TRIALS_FILE
    if path.is_file():
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise SearchError(f"{path}: unreadable ({exc})") from None
    else:
        frame = trials_frame(exp_dir)
    if frame.empty or "status" not in frame:
        raise SearchError(f"{exp_dir}: the experiment has no trials")
    return frame


def read_run_file(exp_dir: Path) -> dict:
    """``search_run.json`` of ``exp_dir`` ({} when absent); unreadable JSON is a SearchError."""
    path = Path(exp_dir) / RUN_FILE
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SearchError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(settings, dict):
        raise SearchError(f"{path}: expected a JSON object")
    return settings


def stored_path(settings: dict, key: str, exp_dir: Path, hint: str = "") -> Path | None:
    """The run's recorded ``world``/``logs``/``config``: absolute and still there, else a SearchError
    (never a silent fallback to the built-in world)."""
    value = settings.get(key)
    if value is None:
        return None
    where = f"{Path(exp_dir) / RUN_FILE}: {key}"
    path = Path(value)
    if not path.is_absolute():
        raise SearchError(f"{where} {value!r} is a relative path, so it cannot be found reliably; "
                          f"write its absolute path there{hint}")
    if not path.exists():
        raise SearchError(f"{where} {value} is gone; restore it (the search ran on it)")
    return path


def status_counts(frame: pd.DataFrame) -> str:
    """``"2 errored, 1 stopped"`` (or ``"no trials"``)."""
    counts = frame["status"].value_counts().to_dict() if "status" in frame and not frame.empty else {}
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no trials"


def first_error(frame: pd.DataFrame) -> str:
    """``"first error: <its last line> (<error.txt>); "`` for the first errored trial, else ``""``."""
    if "status" not in frame:
        return ""
    for path in frame.loc[frame["status"] == "errored", "path"]:
        error_file = Path(str(path)) / "error.txt"
        if error_file.is_file():
            lines = [x.strip() for x in error_file.read_text(errors="replace").splitlines() if x.strip()]
            if lines:
                return f"first error: {lines[-1][:200]} ({error_file}); "
    return ""


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
    if "status" not in frame:
        return pd.DataFrame()
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
    counts = frame["status"].value_counts().to_dict() if "status" in frame and not frame.empty else {}
    cols = ["trial_id", "score", "lift_vs_sticky", "lift_lower", "lift_upper", "time_per_session",
            "val_loss", "epoch", "duration_s"] + (["pareto"] if obj.multi else [])
    cols += [c for c in best.columns if c.startswith("config/")]
    lines = ["# Search summary\n", header, f"Objective: `{obj.metric}` ({obj.mode}). "
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


def export_row(row: pd.Series, out: str | Path, force: bool = False, keep: tuple[Path, ...] = ()) -> Path:
    """Export one finished trial (a row of trials.parquet) to the folder ``out``, atomically.

    An existing non-empty ``out`` is refused unless ``force``, and then replaced as a whole (no file
    of an earlier export stays beside this one); ``keep``: paths ``out`` must not hold.
    """
    ckpt = row.get("checkpoint")
    if not isinstance(ckpt, str) or not ckpt:  # None/NaN after Parquet
        raise SearchError(f"trial {row['trial_id']} has no final checkpoint (status {row['status']})")
    if not (Path(ckpt) / artifacts.MODEL_FILE).is_file():
        raise SearchError(f"trial {row['trial_id']}: its checkpoint {ckpt} is gone or incomplete "
                          f"(no {artifacts.MODEL_FILE})")
    metrics = {k: row[k] for k in row.index if not k.startswith("config/") and k not in ("checkpoint", "path")}
    with atomic_dir(out, force=force, keep=keep) as tmp:
        artifacts.export_trial(ckpt, metrics, tmp)
    return Path(out)
