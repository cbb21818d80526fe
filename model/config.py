"""The experiment configuration: features + model + train + serving, loaded from YAML at the edge.

``TrainConfig`` (optimiser, schedule, stopping) lives here too, beside the sections it joins;
``DSSMConfig`` and ``FeatureConfig`` live with the code they configure.

``configs/train.yaml`` holds all three sections (the seed's best). A *variant* is a named entry
under the top-level ``variants:`` key of ``configs/seed_variants.yaml``: a mapping of dotted keys
(``model.hidden_dim: 64``). Variants describe the seed's nine rows, so each one starts from the
seminar baseline, not from train.yaml's values::

    config = train.yaml  →  seed_variants.yaml ``seminar:`` overrides  →  the variant's overrides

Every override goes through ``sim_bridge.contract.files.with_overrides``, so unknown keys and wrong
types fail with the dotted key's name, as do the ``__post_init__`` checks of each section.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim_bridge.contract.files import ConfigError, from_dict, read_yaml, with_overrides

from model.dssm import DSSMConfig
from model.features import FeatureConfig
from sim_bridge.contract.recs import ServingConfig

DEFAULT_VARIANTS = Path(__file__).resolve().parent.parent / "configs" / "seed_variants.yaml"


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
    pair_weight: float = 1.0  # weight of the session-pair loss beside the user loss (when the data has pairs)
    pair_negatives: str = "marginal"  # a pair's negative: marginal (another pair's later track) | uniform
    num_threads: int = 0  # torch.set_num_threads; 0 = leave as is
    seed: int = 0  # weight init and batch order

    def __post_init__(self) -> None:
        for key in ("batch_size", "max_epochs", "eval_batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("patience", "lr_patience", "num_threads"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key}: must be >= 0, got {getattr(self, key)}")
        for key in ("weight_decay", "min_delta", "lr_threshold", "min_lr", "pair_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key}: must be >= 0, got {getattr(self, key)}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr: must be > 0, got {self.lr}")
        if not 0 < self.lr_factor < 1:
            raise ConfigError(f"train.lr_factor: must be in (0, 1), got {self.lr_factor}")
        if self.pair_negatives not in ("marginal", "uniform"):
            raise ConfigError(f"train.pair_negatives: expected 'marginal' or 'uniform', got {self.pair_negatives!r}")
        if self.lr_threshold_mode not in ("rel", "abs"):
            raise ConfigError(f"train.lr_threshold_mode: expected 'rel' or 'abs', got {self.lr_threshold_mode!r}")


@dataclass
class ExperimentConfig:
    """Everything one training run needs."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: DSSMConfig = field(default_factory=DSSMConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)


def load_experiment_config(path: str | Path, variant: str | None = None,
                           variants_path: str | Path | None = None) -> ExperimentConfig:
    """Load ``path``; with ``variant``, apply ``seminar:`` then that variant from ``variants_path``.

    ``variants_path`` defaults to ``seed_variants.yaml`` beside ``path``, else the repo's copy.
    """
    data = read_yaml(path)
    try:
        cfg = from_dict(ExperimentConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if variant is None:
        return cfg
    vpath = Path(variants_path) if variants_path else Path(path).with_name("seed_variants.yaml")
    if variants_path is None and not vpath.is_file():
        vpath = DEFAULT_VARIANTS
    base, variants = read_variants(vpath)
    if variant not in variants:
        raise ConfigError(f"{vpath}: unknown variant '{variant}' (known: {', '.join(variants)})")
    try:
        return with_overrides(with_overrides(cfg, base), variants[variant])
    except ConfigError as exc:
        raise ConfigError(f"{vpath}: variant '{variant}': {exc}") from None


def read_variants(path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(seminar overrides, {variant name: overrides}) from a seed_variants.yaml, keys flattened."""
    data = read_yaml(path)
    unknown = sorted(set(data) - {"seminar", "variants"})
    if unknown or "variants" not in data:
        raise ConfigError(f"{path}: expected top-level keys 'seminar' and 'variants', got {sorted(data)}")
    variants = data["variants"] or {}
    if not isinstance(variants, dict):
        raise ConfigError(f"{path}: 'variants' must be a mapping of name → overrides")
    flat = {name: flatten(v or {}, where=f"variants.{name}") for name, v in variants.items()}
    return flatten(data.get("seminar") or {}, where="seminar"), flat


def flatten(mapping: Any, prefix: str = "", where: str = "") -> dict[str, Any]:
    """Nested mappings and dotted keys → one flat dict of dotted keys."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where or prefix}: expected a mapping, got {type(mapping).__name__}")
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, full, where))
        else:
            out[full] = value
    return out
