"""The training's fast paths learn what the plain one learns.

``model.train`` runs the user tower once per distinct masked bag (``DSSM.grouped_loss``) and the
fused dense Adam. The plain path — the user tower on every triplet's own masked history
(``DSSM.forward``) and torch's default Adam — is the same math; here both train the seed's
configuration for three epochs on a small world: at the same seed their first epochs agree to
float rounding, and the fast path's whole curve lies within the plain path's run-to-run spread
(three standard deviations of five seeds).
"""
import numpy as np
import pytest
import torch

from sim_bridge.contract.files import with_overrides

import model.train as training
from model.config import load_experiment_config
from model.dssm import DSSM
from model.features import build_training_data, mask_history
from tests.model.conftest import TRAIN_YAML
from tests.synthetic import synthetic_catalog, synthetic_events


def plain_loss(self, uhist, inv, pos, neg, pos1, neg1):
    """The reference: every triplet's own masked history through the whole user tower."""
    return self.forward(mask_history(uhist[inv], pos1, neg1), pos, neg)


FAST_OPTIMIZERS = training._optimizers


def plain_optimizers(model, tc):
    """The training's optimisers with torch's default (unfused) dense Adam."""
    opts = FAST_OPTIMIZERS(model, tc)
    dense = opts[0].param_groups[0]["params"]
    return [torch.optim.Adam(dense, lr=tc.lr, weight_decay=tc.weight_decay), *opts[1:]]


@pytest.fixture(scope="module")
def seed_setup():
    cfg = with_overrides(load_experiment_config(TRAIN_YAML), {"train.max_epochs": 3, "train.num_threads": 1,
                                                              "train.batch_size": 512})
    catalog = synthetic_catalog(400, n_genres=6, seed=3)
    data = build_training_data(synthetic_events(catalog, n_users=150, n_events=8000, seed=3), catalog, cfg.features)
    return cfg, data


def curve(cfg, data, seed: int) -> np.ndarray:
    """[epochs, 2] train and val losses of a training run at ``seed``."""
    cfg = with_overrides(cfg, {"train.seed": seed})
    history = training.train(cfg, data, device="cpu").history
    return np.array([[row["train_loss"], row["val_loss"]] for row in history])


def test_fast_path_curve_lies_within_the_plain_paths_run_to_run_spread(seed_setup, monkeypatch):
    cfg, data = seed_setup
    fast = curve(cfg, data, seed=0)
    monkeypatch.setattr(DSSM, "grouped_loss", plain_loss)
    monkeypatch.setattr(training, "_optimizers", plain_optimizers)
    plain = np.stack([curve(cfg, data, seed=s) for s in range(5)])  # [seeds, epochs, 2]
    assert fast.shape == plain.shape[1:] == (3, 2)
    # epoch 1 at the same seed: the same math up to float rounding (later epochs drift apart as
    # any two float orders do, and the LR schedule's threshold can turn on a rounding)
    assert np.abs(fast[0] - plain[0, 0]).max() < 1e-4
    mean, spread = plain.mean(axis=0), plain.std(axis=0, ddof=1)
    assert np.all(spread > 1e-4)  # the seeds do differ: the bound below is not vacuous
    assert np.all(np.abs(fast - mean) < 3 * spread), (fast, mean, spread)
