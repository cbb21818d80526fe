"""Checkpoints that carry their config and id maps, loadable with ``weights_only=True``.

File layout (a plain dict of tensors, lists, dicts and scalars)::

    {"format": 1, "state_dict": ..., "config": asdict(ExperimentConfig),
     "dims": {"n_tracks", "n_items", "n_genres", "n_artists"}, "maps": {name: tensor}}

The item features are buffers in the state dict, so the file alone rebuilds the model.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from sim_bridge.contract.files import atomic_path, from_dict

from model.config import ExperimentConfig
from model.dssm import DSSM
from model.features import TrainingData

FORMAT = 1


def data_maps(data: TrainingData) -> dict[str, np.ndarray]:
    """The id maps a checkpoint needs to serve: kept track ids, user ids and their histories."""
    return {"track_ids": data.track_ids, "user_ids": data.user_ids, "history": data.serving_history}


def save_checkpoint(path: str | Path, model: DSSM, cfg: ExperimentConfig, maps: dict[str, np.ndarray]) -> None:
    """Write weights + config + dims + id maps to ``path`` atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "state_dict": state,
        "config": dataclasses.asdict(cfg),
        "dims": dict(model.dims),
        "maps": {name: torch.from_numpy(np.ascontiguousarray(arr)) for name, arr in maps.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> tuple[DSSM, ExperimentConfig, dict[str, np.ndarray]]:
    """(model in eval mode on CPU, config, maps as numpy arrays) from a checkpoint file."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown checkpoint format {payload.get('format')!r}")
    cfg = from_dict(ExperimentConfig, payload["config"])
    model = DSSM(cfg.model, **payload["dims"])
    model.load_state_dict(payload["state_dict"])
    maps = {name: t.numpy() for name, t in payload["maps"].items()}
    return model.eval(), cfg, maps
