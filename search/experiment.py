"""The experiment folder ``STORAGE/NAME``: its layout, and every read and write of it.

Every command goes through this module: ``search.run`` (writes it), ``search.confirm``,
``search.report``, ``search.export``, ``search.serve`` and ``--warm-start`` (read it)::

    search_run.json     the run's settings (absolute paths to config, world, logs; ``started_at``)
    tuner.pkl, experiment_state-*.json, search_gen_state-*.json   Tune's own state
    optuna.journal      the Optuna study
    asha_stopped.txt    ids of the trials ASHA stopped, one a line (written by the scheduler)
    <trial folders>     result.json, progress.csv, TensorBoard events, the final checkpoint
    trials.parquet      one row per trial (below)
    summary.md          counts and the top-10 table
    best/               the best finished trial, exported (below)
    confirm/, report/   written by search.confirm and search.report

``trials.parquet``: ``trial_id``, ``status`` (finished | stopped | errored | running | pending),
``stop_reason`` (below), ``duration_s``, ``config/<dotted key>`` for every sampled key, every metric of the trial's last
report (with ``rung_lift_<epoch>`` per rung and the chosen ``serving/<knob>``; ``timestamp``: when
it last reported, Unix seconds), ``checkpoint`` (its final checkpoint folder, if any) and ``path``.
"stopped": the scheduler (ASHA) stopped it before its final report. "running"/"pending" after the
run ended: it was interrupted (Ctrl-C, killed driver); ``--resume`` reruns it.

``stop_reason``, why a trial ended: from a finished trial's own final report (the training loop
knows) ``rung_plateau`` (its rung lift stopped improving), ``early_stopping`` (its validation loss
did not beat the best by ``train.min_delta`` for ``train.patience`` epochs) or ``max_epochs`` (it
ran to ``train.max_epochs`` or the last rung); from the driver ``asha`` (listed in
``asha_stopped.txt``) and ``error``. None for a trial that is still running or pending, or that
``--time-budget-s`` ended (stopped, but not by ASHA).

A trial's checkpoint (written by the trainable, persisted by Tune)::

    model.pt                 model.checkpoint.save_checkpoint (weights + config + id maps)
    recommendations.npz      users int64 [U], tracks int64 [U, k]   (catalog ids, as A/B-tested)
    item_recommendations.npz items int64 [K], tracks int64 [K, k]   (only when it serves per-track lists)
    config.yaml              the trial's full training config, with the serving it chose
    final.json               the trial's final metrics (a resumed trial re-reports them, untrained)

Item embeddings are not stored per trial (they are ~K×D floats each); an export recomputes them
from the checkpoint's weights (the item tower needs no training data). An export (``best/`` or
``search.export --out DIR``)::

    config.yaml  metrics.json  checkpoint/model.pt
    source.json                where it came from: experiment, trial_id, the run's world, logs, config
    recommendations.json       botify format, one {"user": u, "tracks": [...]} per line
    item_recommendations.json  botify item-to-item format (when the trial serves per-track lists)
    item_embeddings.npy  item_ids.npy

Reading Tune's state unpickles files of the experiment folder: only read folders you made.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from model.checkpoint import data_maps, load_checkpoint, save_checkpoint
from model.config import ExperimentConfig, load_experiment_config
from model.infer import item_embeddings, write_item_embeddings
from sim_bridge.contract.files import atomic_dir, atomic_path, atomic_write_text
from sim_bridge.contract.catalog import Catalog
from sim_bridge.policies import Policy, needs_item_lists, needs_user_lists, serving_policy
from sim_bridge.contract.recs import read_item_recs, read_user_recs, write_item_recs, write_user_recs

from search.config import Objective, objective
from search.errors import SearchError

RUN_FILE = "search_run.json"  # the run's settings (absolute paths), read back by --resume, confirm, export
TUNER_FILE = "tuner.pkl"  # written by Tune when the run starts: without it nothing ran yet
TRIALS_FILE = "trials.parquet"
SUMMARY_FILE = "summary.md"
BEST_DIR = "best"
JOURNAL_FILE = "optuna.journal"  # the Optuna study of a run
ASHA_STOPS_FILE = "asha_stopped.txt"  # trial ids ASHA stopped (search.searcher.RecordingASHA)
STOP_REASONS = ("rung_plateau", "asha", "early_stopping", "max_epochs", "error")
MODEL_FILE = "model.pt"
RECS_FILE = "recommendations.npz"
ITEM_RECS_FILE = "item_recommendations.npz"
CONFIG_FILE = "config.yaml"
FINAL_FILE = "final.json"
USER_RECS_JSON = "recommendations.json"  # an export's lists, in botify's formats
ITEM_RECS_JSON = "item_recommendations.json"
SOURCE_FILE = "source.json"  # an export's origin: experiment, trial, the run's world/logs/config
METRICS = ("val_loss", "val_loss_rel", "train_loss", "epoch", "time_per_session", "control_time_per_session",
           "lift_vs_sticky", "lift_lower", "lift_upper", "lift_significant", "score",
           "truncated_share", "train_seconds", "stopped_early", "stop_reason", "device", "final", "training_iteration",
           "rung_lift", "rung_best_epoch", "rung_best_lift", "rung_seconds", "tuning_lift", "serving_tried",
           "timestamp")
PREFIXES = ("rung_lift_", "serving/")  # per-rung lifts and the serving a trial chose
COLUMNS = ("trial_id", "status", "stop_reason", "duration_s")  # present even when there are no trials


# ---------------------------------------------------------------- search_run.json


def read_run_file(exp_dir: str | Path) -> dict:
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


def write_run_file(exp_dir: str | Path, settings: dict) -> None:
    """``search_run.json``, atomically."""
    atomic_write_text(Path(exp_dir) / RUN_FILE, json.dumps(settings, indent=2) + "\n")


def run_objective(settings: dict) -> Objective:
    """The objective the run optimised (``score`` for a run that recorded none)."""
    return objective(settings.get("objective", "score"))


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


def newest(storage: Path) -> Path:
    """The experiment under ``storage`` whose ``search_run.json`` changed last."""
    runs = sorted(storage.glob(f"*/{RUN_FILE}"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SearchError(f"--resume: no experiment under {storage}")
    return runs[-1].parent


# ---------------------------------------------------------------- trials


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
    return "asha" if status == "stopped" and asha else None


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


# The progress columns, shared by the status table search.run prints and summary.md's top 10.
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
    from sim_bridge.policies import POLICY_KNOBS

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


def reason_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Trials per stop reason, in :data:`STOP_REASONS` order (reasons with no trial left out)."""
    if "stop_reason" not in frame or frame.empty:
        return {}
    counts = frame["stop_reason"].dropna().value_counts().to_dict()
    return {r: int(counts[r]) for r in (*STOP_REASONS, *sorted(set(counts) - set(STOP_REASONS))) if r in counts}


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


def export_source(exp_dir: str | Path, settings: dict, row: pd.Series) -> dict:
    """What an export was made from: the experiment, the trial and the run's (``settings``: its
    ``search_run.json``) world, logs and config."""
    return {"experiment": str(Path(exp_dir).resolve()), "trial_id": str(row["trial_id"]),
            **{key: settings.get(key) for key in ("world", "logs", "config")}}


def export_row(row: pd.Series, out: str | Path, source: dict, force: bool = False,
               keep: tuple[Path, ...] = ()) -> Path:
    """Export one finished trial (a row of trials.parquet) to the folder ``out``, atomically;
    ``source`` (``export_source``) is written beside it as ``source.json``.

    An existing non-empty ``out`` is refused unless ``force``, and then replaced as a whole (no file
    of an earlier export stays beside this one); ``keep``: paths ``out`` must not hold.
    """
    ckpt = row.get("checkpoint")
    if not isinstance(ckpt, str) or not ckpt:  # None/NaN after Parquet
        raise SearchError(f"trial {row['trial_id']} has no final checkpoint (status {row['status']})")
    if not (Path(ckpt) / MODEL_FILE).is_file():
        raise SearchError(f"trial {row['trial_id']}: its checkpoint {ckpt} is gone or incomplete "
                          f"(no {MODEL_FILE})")
    metrics = {k: row[k] for k in row.index if not k.startswith("config/") and k not in ("checkpoint", "path")}
    with atomic_dir(out, force=force, keep=keep) as tmp:
        export_trial(ckpt, metrics, tmp)
        atomic_write_text(tmp / SOURCE_FILE, json.dumps(source, indent=2) + "\n")
    return Path(out)


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


# ---------------------------------------------------------------- trial folders and checkpoints


def save_trial(folder: str | Path, model, cfg, data, recs: dict[int, np.ndarray],
               item_recs: dict[int, np.ndarray] | None = None, metrics: dict | None = None) -> None:
    """Write a trial's checkpoint folder (see the module docstring)."""
    folder = Path(folder)
    save_checkpoint(folder / MODEL_FILE, model, cfg, data_maps(data))
    _save_lists(folder / RECS_FILE, recs)
    if item_recs is not None:
        _save_lists(folder / ITEM_RECS_FILE, item_recs)
    (folder / CONFIG_FILE).write_text(config_yaml(cfg))
    if metrics is not None:
        (folder / FINAL_FILE).write_text(json.dumps(metrics, default=_json_default) + "\n")


def final_metrics(folder: str | Path) -> dict | None:
    """The final metrics a finished trial's checkpoint holds; None for any other folder."""
    path = Path(folder) / FINAL_FILE
    if not (path.is_file() and (Path(folder) / MODEL_FILE).is_file()):
        return None
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return metrics if isinstance(metrics, dict) and metrics.get("final") is True else None


def finished_on_disk(trial_dir: str | Path) -> Path | None:
    """The checkpoint of a trial whose final result Tune logged (``result.json``), if still there.

    Tune logs a result only after the trial persisted its checkpoint, so a final line naming a
    checkpoint folder means the trial finished, even if Tune's own snapshot (written every few
    seconds) still says it was running when the driver died.
    """
    result = Path(trial_dir) / "result.json"
    if not result.is_file():
        return None
    for line in reversed(result.read_text(errors="replace").splitlines()):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill
            continue
        name = row.get("checkpoint_dir_name") if isinstance(row, dict) and row.get("final") is True else None
        if name and final_metrics(Path(trial_dir) / name) is not None:
            return Path(trial_dir) / name
    return None


def _save_lists(path: Path, lists: dict[int, np.ndarray]) -> None:
    """Ragged id → track lists as (users [n], tracks [n, k]); shorter lists padded with -1."""
    keys = np.fromiter(lists, dtype=np.int64, count=len(lists))
    width = max((len(v) for v in lists.values()), default=0)
    tracks = np.full((len(keys), width), -1, dtype=np.int64)
    for i, key in enumerate(keys):
        tracks[i, : len(lists[key])] = lists[key]
    np.savez(path, users=keys, tracks=tracks)


def _load_lists(path: Path) -> dict[int, np.ndarray]:
    with np.load(path) as z:
        return {int(u): row[row >= 0] for u, row in zip(z["users"], z["tracks"])}


def load_item_recs(folder: str | Path) -> dict[int, np.ndarray] | None:
    """track → its nearest tracks, when the trial served i2i; else None."""
    path = Path(folder) / ITEM_RECS_FILE
    return _load_lists(path) if path.is_file() else None


def config_yaml(cfg) -> str:
    """A dataclass config as nested YAML (loadable by ``model.config.load_experiment_config``)."""
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)


def load_recs(folder: str | Path) -> dict[int, np.ndarray]:
    """user → recommended catalog track ids, from a trial checkpoint folder."""
    return _load_lists(Path(folder) / RECS_FILE)


def served_config(folder: str | Path) -> ExperimentConfig:
    """The config a trial checkpoint or export folder is served with (its ``serving`` included)."""
    return load_experiment_config(Path(folder) / CONFIG_FILE)


def trial_policy(folder: str | Path, catalog: Catalog) -> Policy:
    """A trial checkpoint's (.npz) or export's (.json) lists, served as the trial was searched."""
    folder = Path(folder)
    serving = served_config(folder).serving
    exported = not (folder / RECS_FILE).is_file()
    user_recs, item_recs = {}, None  # only the kinds of lists the policy reads
    if needs_user_lists(serving.policy):
        user_recs = read_user_recs(folder / USER_RECS_JSON) if exported else load_recs(folder)
    if needs_item_lists(serving.policy):
        item_recs = read_item_recs(folder / ITEM_RECS_JSON) if exported else load_item_recs(folder)
    return serving_policy(serving, catalog, user_recs, item_recs)

def export_trial(checkpoint: str | Path, metrics: dict, out: str | Path) -> Path:
    """Export a trial checkpoint folder to ``out`` in the documented layout; returns ``out``."""
    checkpoint, out = Path(checkpoint), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG_FILE, (checkpoint / CONFIG_FILE).read_text())
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, default=_json_default) + "\n")
    (out / "checkpoint").mkdir(exist_ok=True)
    with atomic_path(out / "checkpoint" / MODEL_FILE) as tmp:
        shutil.copyfile(checkpoint / MODEL_FILE, tmp)
    write_user_recs(load_recs(checkpoint), out / USER_RECS_JSON)
    item_recs = load_item_recs(checkpoint)
    if item_recs is not None:
        write_item_recs(item_recs, out / ITEM_RECS_JSON)
    model, _, maps = load_checkpoint(checkpoint / MODEL_FILE)
    write_item_embeddings(out, item_embeddings(model, device="cpu"), maps["track_ids"])
    return out



def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
