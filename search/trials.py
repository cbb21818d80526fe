"""The trials table: one row per trial of a run (``trials.parquet``), why each trial ended, the
ranking of the finished ones (the Pareto front in ``multi`` mode) and ``summary.md``.

``trials.parquet``: ``trial_id``, ``status`` (finished | stopped | errored | running | pending),
``stop_reason`` (below), ``duration_s``, ``config/<dotted key>`` for every sampled key, every metric of the trial's last
report (with ``rung_lift_<epoch>`` per rung and the chosen ``serving/<knob>``; ``timestamp``: when
it last reported, Unix seconds; ``node_id``: the Ray node of that report), ``checkpoint`` (its final
checkpoint folder, if any), ``path``, ``retries`` (how often Tune started it again after it failed,
e.g. its node was lost: ``--max-failures``) and ``nodes`` (the nodes it reported from, in order,
comma-separated).
"stopped": it ended before its final report, stopped by the scheduler (ASHA) or by the search's
time budget. "running"/"pending" after the run ended: it was interrupted (Ctrl-C, killed driver);
``--resume`` reruns it.

``stop_reason``, why a trial ended: from a finished trial's own final report (the training loop
knows) ``rung_plateau`` (its rung lift stopped improving), ``early_stopping`` (its validation loss
did not beat the best by ``train.min_delta`` for ``train.patience`` epochs) or ``max_epochs`` (it
ran to ``train.max_epochs`` or the last rung); from the driver ``asha`` (listed in
``asha_stopped.txt``), ``error`` and ``time_budget`` (stopped, but not by ASHA: ``--time-budget-s``
ended the search under it; such a trial does not count towards ``--num-samples``, and ``--resume``
starts another in its place). None for a trial that is still running or pending.

Reading Tune's state unpickles files of the experiment folder: only read folders you made.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim_bridge.contract.files import atomic_path, atomic_write_text

from search.config import Objective
from search.errors import SearchError
from search.experiment import (ASHA_STOPS_FILE, BEST_DIR, SUMMARY_FILE, TRIALS_FILE, export_row, export_source,
                               read_run_file)
from search.formatting import PROGRESS_COLUMNS, fmt, progress_cells

STOP_REASONS = ("rung_plateau", "asha", "early_stopping", "max_epochs", "error", "time_budget")
METRICS = ("val_loss", "val_loss_rel", "train_loss", "epoch", "time_per_session", "control_time_per_session",
           "lift_vs_sticky", "lift_lower", "lift_upper", "lift_significant", "score",
           "truncated_share", "train_seconds", "stopped_early", "stop_reason", "device", "final", "training_iteration",
           "rung_lift", "rung_best_epoch", "rung_best_lift", "rung_seconds", "tuning_lift", "serving_tried",
           "timestamp", "data_cache_hit", "node_id")  # data_cache_hit: 1.0 (a hit) or 0.0 when features.* are sampled, else empty
PREFIXES = ("rung_lift_", "serving/")  # per-rung lifts and the serving a trial chose
COLUMNS = ("trial_id", "status", "stop_reason", "duration_s")  # present even when there are no trials


def trials_frame(exp_dir: str | Path) -> pd.DataFrame:
    """Read every trial of a Tune experiment folder into one row each (Tune's state, unpickled)."""
    from ray.tune import ExperimentAnalysis  # only the driver reads Tune's state

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
    stopped = asha_stopped(exp_dir)
    rows = [_row(t, stopped) for t in analysis.trials]
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


def pick(frame: pd.DataFrame, trial: str | None, obj: Objective) -> pd.Series:
    """The row of ``trial``, or the best finished trial by ``obj``."""
    if trial is not None:
        rows = frame[frame["trial_id"] == trial]
        if rows.empty:
            raise SearchError(f"--trial: no trial {trial!r} (known: {', '.join(frame['trial_id'])})")
        return rows.iloc[0]
    best = ranked(frame, obj)
    if best.empty:
        raise SearchError(f"no finished trial ({status_counts(frame)})")
    return best.iloc[0]


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


def asha_stopped(exp_dir: str | Path) -> set[str]:
    """The ids of the trials ASHA stopped (``asha_stopped.txt``; empty when there is none)."""
    path = Path(exp_dir) / ASHA_STOPS_FILE
    return set(path.read_text().split()) if path.is_file() else set()


def stop_reason(status: str, last: dict, asha: bool) -> str | None:
    """Why a trial ended (see the module doc): ``status`` as in trials.parquet, ``last`` its last
    result, ``asha`` whether ASHA stopped it."""
    if status == "errored":
        return "error"
    if status == "finished":
        return last.get("stop_reason")  # None for a trial of a run made before stop reasons
    if status == "stopped":
        return "asha" if asha else "time_budget"
    return None


def ended(frame: pd.DataFrame) -> int:
    """The trials that count towards ``--num-samples``: finished, errored, or stopped by ASHA (not
    those the time budget cut short, nor interrupted ones)."""
    if "status" not in frame:
        return 0
    done = frame["status"].isin(["finished", "stopped", "errored"]) & (frame["stop_reason"] != "time_budget")
    return int(done.sum())


def budget_cut(frame: pd.DataFrame) -> int:
    """The trials the time budget cut short (``--resume`` starts as many new ones)."""
    return int((frame["stop_reason"] == "time_budget").sum()) if "stop_reason" in frame else 0


_TUNE_STATES = {"ERROR": "errored", "RUNNING": "running", "PAUSED": "running", "PENDING": "pending"}


def trial_status(tune_status: str, last: dict) -> str:
    """A trial's status as trials.parquet names it, from Tune's status and its last result: a
    terminated trial "finished" when that result is its final report, else "stopped"."""
    return _TUNE_STATES.get(tune_status) or ("finished" if last.get("final") else "stopped")


def _row(trial, asha: set[str] = frozenset()) -> dict:
    last = trial.last_result or {}
    status = trial_status(trial.status, last)
    row = {"trial_id": trial.trial_id, "status": status, "stop_reason": stop_reason(status, last, trial.trial_id in asha),
           "duration_s": float(last.get("time_total_s", 0.0))}
    row.update({f"config/{k}": v for k, v in sorted(trial.config.items())})
    row.update({k: last.get(k) for k in METRICS if k != "stop_reason"})
    row.update({k: v for k, v in sorted(last.items()) if k.startswith(PREFIXES)})
    ckpt = trial.checkpoint
    row["checkpoint"] = ckpt.path if (ckpt is not None and last.get("final")) else None
    row["path"] = trial.path
    row["retries"] = retries(trial)
    row["nodes"] = ",".join(reporting_nodes(Path(trial.path)))
    return row


def retries(trial) -> int:
    """How often Tune started ``trial`` again after a failure (its node lost, its process killed)."""
    return int(getattr(getattr(trial, "run_metadata", None), "num_failures", 0) or 0)


def reporting_nodes(folder: Path) -> list[str]:
    """The ids of the nodes a trial reported from (``node_id`` of its ``result.json`` lines), in
    the order it ran on them: two for a trial retried on another node after its node was lost."""
    path = folder / "result.json"
    nodes: list[str] = []
    if not path.is_file():
        return nodes
    for line in path.read_text(errors="replace").splitlines():
        try:
            node = json.loads(line).get("node_id")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(node, str) and (not nodes or nodes[-1] != node):
            nodes.append(node)
    return nodes


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


def reason_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Trials per stop reason, in :data:`STOP_REASONS` order (reasons with no trial left out)."""
    if "stop_reason" not in frame or frame.empty:
        return {}
    counts = frame["stop_reason"].dropna().value_counts().to_dict()
    return {r: int(counts[r]) for r in (*STOP_REASONS, *sorted(set(counts) - set(STOP_REASONS))) if r in counts}


def cache_counts(frame: pd.DataFrame) -> str:
    """``"Training data: H from the cache, M built (cache misses).\n"`` over the trials that
    reported ``data_cache_hit`` (a search sampling ``features.*``); ``""`` when none did."""
    hits = frame["data_cache_hit"].dropna().astype(float) if "data_cache_hit" in frame else pd.Series(dtype=float)
    if hits.empty:
        return ""
    return f"Training data: {int((hits == 1).sum())} from the cache, {int((hits == 0).sum())} built (cache misses).\n"


def write_summary(frame: pd.DataFrame, obj: Objective, exp_dir: str | Path, header: str = "") -> Path:
    """``summary.md``: counts (by status and by stop reason) and the top-10 table: the progress
    columns of the status table, then score, time per session, duration and the sampled values
    (the Pareto front marked in multi mode)."""
    best = ranked(frame, obj).head(10)
    counts = frame["status"].value_counts().to_dict() if "status" in frame and not frame.empty else {}
    reasons = reason_counts(frame)
    lines = ["# Search summary\n", header, f"Objective: `{obj.metric}` ({obj.mode}). "
             f"Trials: {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}.\n",
             "Stop reasons: " + (", ".join(f"{v} {k}" for k, v in reasons.items()) or "none recorded") + ".\n"]
    cache = cache_counts(frame)
    lines += [cache] if cache else []
    lines.append(_summary_table(best, obj) if not best.empty else "No finished trials.")
    path = Path(exp_dir) / SUMMARY_FILE
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _summary_table(best: pd.DataFrame, obj: Objective) -> str:
    extra = ["score", "time_per_session", "duration_s"] + (["pareto"] if obj.multi else [])
    extra = [c for c in extra if c in best.columns]
    config = [c for c in best.columns if c.startswith("config/")]
    head = [*PROGRESS_COLUMNS, *extra, *(c.removeprefix("config/") for c in config)]
    body = []
    for _, row in best.iterrows():
        cells = progress_cells(row["trial_id"], str(row["status"]), row)
        cells += [fmt(row[c], 4) for c in extra] + [fmt(row[c]) for c in config]
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *body])


def write_results(exp_dir: Path, obj: Objective, header: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``trials.parquet``, ``summary.md`` and ``best/`` (when a trial finished); (trials, ranked)."""
    frame = trials_frame(exp_dir)
    write_trials(frame, exp_dir)
    write_summary(frame, obj, exp_dir, header=header)
    best = ranked(frame, obj)
    if not best.empty:
        top = best.iloc[0]  # best/ belongs to the run
        export_row(top, exp_dir / BEST_DIR, export_source(exp_dir, read_run_file(exp_dir), top), force=True)
    return frame, best


def trial_dir(row: pd.Series, exp_dir: Path) -> Path:
    """The trial's Tune folder; found by name under ``exp_dir`` when the experiment was moved."""
    path = Path(str(row["path"]))
    return path if path.is_dir() else exp_dir / path.name


def trial_results(folder: Path) -> pd.DataFrame:
    """Every report of a trial: ``result.json`` (JSON lines), else ``progress.csv``, else empty."""
    if (folder / "result.json").is_file():
        lines = [json.loads(x) for x in (folder / "result.json").read_text().splitlines() if x.strip()]
        return pd.DataFrame(lines)
    if (folder / "progress.csv").is_file():
        frame = pd.read_csv(folder / "progress.csv")
        if "final" in frame:  # CSV gives "True"/"False" strings or bools
            frame["final"] = frame["final"].astype(str).str.lower() == "true"
        return frame
    return pd.DataFrame()

