"""Shared fixtures of the search tests. ``tiny_trial``: a tiny trained trial for the rung and
serving-search tests — the smoke world, its logs, a DSSM
trained one epoch, a simulator and sticky_artist controls on any seed."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from model.config import load_experiment_config
from model.features import build_training_data
from model.train import train
from sim_bridge import defaults
from sim_bridge.configio import with_overrides
from sim_bridge.logs import read_logs
from sim_bridge.policies import StickyArtist
from sim_bridge.simulator import Simulator
from sim_bridge.world import load_world

TINY = {"model.hidden_dim": 16, "model.embedding_dim": 16, "train.max_epochs": 1, "train.num_threads": 1,
        "features.min_positives": 2}


@dataclass
class TinyTrial:
    cfg: object
    data: object
    model: object
    simulator: Simulator

    def control(self, sessions: int, seed: int):
        return self.simulator.run(StickyArtist(self.simulator.world.catalog), sessions, seed).sessions


@pytest.fixture(scope="session")
def tiny_trial() -> TinyTrial:
    world = load_world(defaults.ensure_smoke_world())
    events = read_logs(defaults.ensure_smoke_logs())
    cfg = with_overrides(load_experiment_config(defaults.CONFIG_DIR / "train.yaml"), TINY)
    data = build_training_data(events, world.catalog, cfg.features)
    model = train(cfg, data, device="cpu").model
    return TinyTrial(cfg, data, model, Simulator(world))
