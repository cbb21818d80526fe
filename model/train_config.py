"""``TrainConfig`` — optimiser, schedule and stopping (kept apart so config.py can import it
without importing the training loop). Re-exported by :mod:`model.train`."""
from __future__ import annotations

from dataclasses import dataclass

from sim_bridge.configio import ConfigError


@dataclass
class TrainConfig:
    """Training loop settings. Defaults are the seminar's.

    Early stopping: an epoch *improves* when ``val < best - min_delta`` (best = the best value
    that counted as an improvement); training stops after ``patience`` epochs without one.
    LR schedule (ReduceLROnPlateau semantics, mode min): better when ``val < best * (1 -
    lr_threshold)`` (rel) or ``val < best - lr_threshold`` (abs); after more than ``lr_patience``
    bad epochs the LR is multiplied by ``lr_factor`` (not below ``min_lr``).
    Weight decay is Adam's coupled L2 (``wd · w`` added to the gradient). With sparse bag
    gradients it is added only to the bag rows a batch touches (lazy L2, as in LazyAdam).
    """

    lr: float = 1e-3
    weight_decay: float = 1e-6
    batch_size: int = 2048
    max_epochs: int = 30
    patience: int = 5
    min_delta: float = 0.0
    lr_factor: float = 0.1
    lr_patience: int = 3
    lr_threshold: float = 1e-4
    lr_threshold_mode: str = "rel"  # rel | abs
    min_lr: float = 0.0
    eval_batch_size: int = 16384
    num_threads: int = 0  # torch.set_num_threads; 0 = leave as is
    seed: int = 0  # weight init and batch order

    def __post_init__(self) -> None:
        for key in ("batch_size", "max_epochs", "eval_batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("patience", "lr_patience", "num_threads"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key}: must be >= 0, got {getattr(self, key)}")
        for key in ("weight_decay", "min_delta", "lr_threshold", "min_lr"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key}: must be >= 0, got {getattr(self, key)}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr: must be > 0, got {self.lr}")
        if not 0 < self.lr_factor < 1:
            raise ConfigError(f"train.lr_factor: must be in (0, 1), got {self.lr_factor}")
        if self.lr_threshold_mode not in ("rel", "abs"):
            raise ConfigError(f"train.lr_threshold_mode: expected 'rel' or 'abs', got {self.lr_threshold_mode!r}")
