"""A finished trial's artifacts: what its checkpoint holds and how it is exported.

Trial checkpoint (written by the trainable, persisted by Tune)::

    model.pt                 model.checkpoint.save_checkpoint (weights + config + id maps)
    recommendations.npz      users int64 [U], tracks int64 [U, k]   (catalog ids, as A/B-tested)
    config.yaml              the trial's full training config

Item embeddings are not stored per trial (they are ~K×D floats each); export recomputes them
from the checkpoint's weights (the item tower needs no training data).

Export (``best/`` or ``search.export --out DIR``)::

    config.yaml  metrics.json  checkpoint/model.pt
    recommendations.json     botify format, one {"user": u, "tracks": [...]} per line
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
from sim_bridge.recfile import write_user_recs

MODEL_FILE = "model.pt"
RECS_FILE = "recommendations.npz"
CONFIG_FILE = "config.yaml"


def save_trial(folder: str | Path, model, cfg, data, recs: dict[int, np.ndarray]) -> None:
    """Write a trial's checkpoint folder (see the module docstring)."""
    folder = Path(folder)
    save_checkpoint(folder / MODEL_FILE, model, cfg, data_maps(data))
    users = np.fromiter(recs, dtype=np.int64, count=len(recs))
    tracks = np.stack([np.asarray(recs[u], dtype=np.int64) for u in users]) if len(users) else np.zeros((0, 0), np.int64)
    np.savez(folder / RECS_FILE, users=users, tracks=tracks)
    (folder / CONFIG_FILE).write_text(config_yaml(cfg))


def config_yaml(cfg) -> str:
    """A dataclass config as nested YAML (loadable by ``model.config.load_experiment_config``)."""
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)


def load_recs(folder: str | Path) -> dict[int, np.ndarray]:
    """user → recommended catalog track ids, from a trial checkpoint folder."""
    with np.load(Path(folder) / RECS_FILE) as z:
        return {int(u): row for u, row in zip(z["users"], z["tracks"])}


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
    model, _, maps = load_checkpoint(checkpoint / MODEL_FILE)
    write_item_embeddings(out, item_embeddings(model, device="cpu"), maps["track_ids"])
    return out



def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
