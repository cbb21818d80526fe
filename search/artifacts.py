"""A finished trial's artifacts: what its checkpoint holds and how it is exported.

Trial checkpoint (written by the trainable, persisted by Tune)::

    model.pt                 model.checkpoint.save_checkpoint (weights + config + id maps)
    recommendations.npz      users int64 [U], tracks int64 [U, k]   (catalog ids, as A/B-tested)
    item_recommendations.npz items int64 [K], tracks int64 [K, k]   (only when serving is i2i)
    config.yaml              the trial's full training config
    final.json               the trial's final metrics (a resumed trial re-reports them, untrained)

Item embeddings are not stored per trial (they are ~K×D floats each); export recomputes them
from the checkpoint's weights (the item tower needs no training data).

Export (``best/`` or ``search.export --out DIR``)::

    config.yaml  metrics.json  checkpoint/model.pt
    recommendations.json     botify format, one {"user": u, "tracks": [...]} per line
    item_recommendations.json  botify item-to-item format, {"item_id": t, "recommendations": [...]}
                             (when the trial serves i2i)
    item_embeddings.npy  item_ids.npy
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import yaml

from model.checkpoint import data_maps, load_checkpoint, save_checkpoint
from model.infer import item_embeddings, write_item_embeddings
from sim_bridge.contract.files import atomic_path, atomic_write_text
from sim_bridge.contract.recs import write_item_recs, write_user_recs

MODEL_FILE = "model.pt"
RECS_FILE = "recommendations.npz"
ITEM_RECS_FILE = "item_recommendations.npz"
CONFIG_FILE = "config.yaml"
FINAL_FILE = "final.json"


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


def export_trial(checkpoint: str | Path, metrics: dict, out: str | Path) -> Path:
    """Export a trial checkpoint folder to ``out`` in the documented layout; returns ``out``."""
    checkpoint, out = Path(checkpoint), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG_FILE, (checkpoint / CONFIG_FILE).read_text())
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, default=_json_default) + "\n")
    (out / "checkpoint").mkdir(exist_ok=True)
    with atomic_path(out / "checkpoint" / MODEL_FILE) as tmp:
        shutil.copyfile(checkpoint / MODEL_FILE, tmp)
    write_user_recs(load_recs(checkpoint), out / "recommendations.json")
    item_recs = load_item_recs(checkpoint)
    if item_recs is not None:
        write_item_recs(item_recs, out / "item_recommendations.json")
    model, _, maps = load_checkpoint(checkpoint / MODEL_FILE)
    write_item_embeddings(out, item_embeddings(model, device="cpu"), maps["track_ids"])
    return out



def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
