"""A finished trial's artifacts: what its checkpoint holds and how it is exported.

Trial checkpoint (written by the trainable, persisted by Tune)::

    model.pt                 model.checkpoint.save_checkpoint (weights + config + id maps)
    recommendations.npz      users int64 [U], tracks int64 [U, k]   (catalog ids, as A/B-tested)
    item_recommendations.npz items int64 [K], tracks int64 [K, k]   (only when serving is i2i)
    config.yaml              the trial's full training config

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
from sim_bridge.atomic import atomic_path, atomic_write_text
from sim_bridge.recfile import write_item_recs, write_user_recs

MODEL_FILE = "model.pt"
RECS_FILE = "recommendations.npz"
ITEM_RECS_FILE = "item_recommendations.npz"
CONFIG_FILE = "config.yaml"


def save_trial(folder: str | Path, model, cfg, data, recs: dict[int, np.ndarray],
               item_recs: dict[int, np.ndarray] | None = None) -> None:
    """Write a trial's checkpoint folder (see the module docstring)."""
    folder = Path(folder)
    save_checkpoint(folder / MODEL_FILE, model, cfg, data_maps(data))
    _save_lists(folder / RECS_FILE, recs)
    if item_recs is not None:
        _save_lists(folder / ITEM_RECS_FILE, item_recs)
    (folder / CONFIG_FILE).write_text(config_yaml(cfg))


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
