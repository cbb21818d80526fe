"""``configs/search.yaml`` → typed settings (through the one YAML loader, ``sim_bridge.configio``).

The file names a base training config (the seed's best), lays a search space of dotted keys over
it (parsed by :mod:`search.space`), and fixes the objective, the simulated evaluation, the ASHA
scheduler and the smoke-test overrides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim_bridge.configio import ConfigError, from_dict, read_yaml


@dataclass(frozen=True)
class ObjectiveConfig:
    """``score = lift_weight * lift_vs_sticky(%) - val_loss_weight * val_loss / model.margin``
    (higher is better; see :func:`search.evaluate.score` for why the margin)."""

    lift_weight: float = 1.0
    val_loss_weight: float = 1.0


@dataclass(frozen=True)
class EvalConfig:
    """The paired simulated A/B every finished trial gets (same seed for all trials)."""

    sessions: int = 10_000
    seed: int = 20_240_611

    def __post_init__(self) -> None:
        if self.sessions < 1:
            raise ConfigError(f"eval.sessions: must be >= 1, got {self.sessions}")


@dataclass(frozen=True)
class AshaConfig:
    """ASHA on ``val_loss`` per epoch; never used for ``--objective multi``."""

    enabled: bool = True
    grace_period: int = 3
    reduction_factor: int = 3

    def __post_init__(self) -> None:
        if self.grace_period < 1:
            raise ConfigError(f"asha.grace_period: must be >= 1, got {self.grace_period}")
        if self.reduction_factor < 2:
            raise ConfigError(f"asha.reduction_factor: must be >= 2, got {self.reduction_factor}")


@dataclass(frozen=True)
class SmokeConfig:
    """What ``--smoke-test`` changes: dotted training overrides, fewer sessions and samples."""

    overrides: dict[str, Any] = field(default_factory=dict)
    sessions: int = 500
    num_samples: int = 3


@dataclass(frozen=True)
class SearchConfig:
    """The whole of ``configs/search.yaml``; ``base`` is resolved relative to that file."""

    base: str
    variant: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted keys laid over the base for every trial
    space: dict[str, Any] = field(default_factory=dict)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    asha: AshaConfig = field(default_factory=AshaConfig)
    smoke: SmokeConfig = field(default_factory=SmokeConfig)


def load_search_config(path: str | Path) -> SearchConfig:
    """Load and type-check ``path``; ``base`` becomes an absolute path. Errors name the key."""
    path = Path(path)
    data = read_yaml(path)  # its errors name the file already
    try:
        cfg = from_dict(SearchConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    base = (path.parent / cfg.base).resolve()
    return SearchConfig(**{**cfg.__dict__, "base": str(base)})
