"""The experiment folder ``STORAGE/NAME``: its layout, ``search_run.json``, a trial's checkpoint
and the export of a trial.

Every command reads or writes it: ``search.run`` (writes it), ``search.confirm``,
``search.report``, ``search.export``, ``search.serve`` and ``--warm-start`` (read it)::

    search_run.json     the run's settings (absolute paths to config, world, logs; ``started_at``)
    tuner.pkl, experiment_state-*.json, search_gen_state-*.json   Tune's own state
    optuna.journal      the Optuna study
    asha_stopped.txt    ids of the trials ASHA stopped, one a line (written by the scheduler)
    <trial folders>     result.json, progress.csv, TensorBoard events, the final checkpoint
    trials.parquet      one row per trial (:mod:`search.trials`)
    summary.md          counts and the top-10 table (:mod:`search.trials`)
    best/               the best finished trial, exported (below)
    confirm/, report/   written by search.confirm and search.report

A trial's checkpoint (written by the trainable, persisted by Tune)::

    model.pt                 model.checkpoint.save_checkpoint (weights + config + id maps)
    recommendations.npz      users int64 [U], tracks int64 [U, k]   (catalog ids, as A/B-tested)
    item_recommendations.npz items int64 [K], tracks int64 [K, k]   (only when it serves per-track lists)
    config.yaml              the trial's full training config, with the serving it chose
    final.json               the trial's final metrics (a resumed trial re-reports them, untrained)

Item embeddings are not stored per trial (they are K×D floats each); an export recomputes them
from the checkpoint's weights (the item tower needs no training data). An export (``best/`` or
``search.export --out DIR``)::

    config.yaml  metrics.json  checkpoint/model.pt
    source.json                where it came from: experiment, trial_id, the run's world, logs, config
    recommendations.json       botify format, one {"user": u, "tracks": [...]} per line
    item_recommendations.json  botify item-to-item format (when the trial serves per-track lists)
    item_embeddings.npy  item_ids.npy
"""
from __future__ import annotations

import dataclasses
import json
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
from sim_bridge.policies import Policy
from sim_bridge.policy_specs import needs_item_lists, needs_user_lists, serving_policy
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
MODEL_FILE = "model.pt"
RECS_FILE = "recommendations.npz"
ITEM_RECS_FILE = "item_recommendations.npz"
CONFIG_FILE = "config.yaml"
FINAL_FILE = "final.json"
USER_RECS_JSON = "recommendations.json"  # an export's lists, in botify's formats
ITEM_RECS_JSON = "item_recommendations.json"
SOURCE_FILE = "source.json"  # an export's origin: experiment, trial, the run's world/logs/config


# ---------------------------------------------------------------- search_run.json


def read_json_object(path: Path) -> dict:
    """A JSON file holding one object; unreadable JSON or another value is a SearchError naming it."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SearchError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SearchError(f"{path}: expected a JSON object")
    return data


def read_run_file(exp_dir: str | Path) -> dict:
    """``search_run.json`` of ``exp_dir`` ({} when absent); unreadable JSON is a SearchError."""
    path = Path(exp_dir) / RUN_FILE
    return read_json_object(path) if path.is_file() else {}


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


# ---------------------------------------------------------------- a trial's checkpoint


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


# ---------------------------------------------------------------- export


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
