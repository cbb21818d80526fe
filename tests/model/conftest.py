"""Tiny synthetic catalog + logs shared by the model tests (seeded, built in the test run)."""
from __future__ import annotations

import pytest

from sim_bridge.contract.files import with_overrides

from model.config import ExperimentConfig, load_experiment_config
from model.features import build_training_data
from tests.synthetic import synthetic_catalog, synthetic_events
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAIN_YAML = REPO / "configs" / "train.yaml"


@pytest.fixture(scope="session")
def catalog():
    return synthetic_catalog(300, n_genres=5, seed=1)


@pytest.fixture(scope="session")
def events(catalog):
    return synthetic_events(catalog, n_users=60, n_events=3000, seed=1)


@pytest.fixture(scope="session")
def tiny_cfg() -> ExperimentConfig:
    cfg = load_experiment_config(TRAIN_YAML)
    return with_overrides(cfg, {"model.hidden_dim": 8, "model.embedding_dim": 8, "train.max_epochs": 3,
                                "train.batch_size": 256, "train.num_threads": 1, "features.n_negatives": 3})


@pytest.fixture(scope="session")
def data(events, catalog, tiny_cfg):
    return build_training_data(events, catalog, tiny_cfg.features)
