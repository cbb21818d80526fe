"""``configs/search.yaml`` → typed settings (through the one YAML loader, ``sim_bridge.contract.files``).

The file names a base training config (the seed's best), lays a search space of dotted keys over
it (parsed by :mod:`search.space`), and fixes the objective, the simulated evaluation, the rungs
(cheap paired lifts during training), the serving choices tuned inside each trial, the sampler,
the ASHA scheduler and the smoke-test overrides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim_bridge.contract.files import ConfigError, from_dict, read_yaml


@dataclass(frozen=True)
class ObjectiveConfig:
    """``score = lift_weight * lift_vs_sticky(%) - val_loss_weight * val_loss / model.margin``
    (higher is better; see :func:`sim_bridge.abtest.score` for why the margin)."""

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
class RungConfig:
    """Cheap paired lifts vs sticky_artist while a trial trains (multi-fidelity on the objective).

    After each epoch in ``epochs`` the trial serves its current model (each candidate policy with
    the serving knobs chosen so far) on ``sessions`` sessions of its own ``seed`` — never the
    evaluation seed — and reports the best lift as ``rung_lift``. A trial stops by itself after
    ``patience`` rungs in a row that do not beat its best rung lift by ``min_improvement`` points,
    and at the last rung at the latest; it is served with the weights of its best rung.
    """

    enabled: bool = True  # false: multi-fidelity off (no rungs, no ASHA; train to max_epochs)
    epochs: list[int] = field(default_factory=lambda: [1, 3, 6, 9, 12])
    sessions: int = 3000
    seed: int = 31_337
    patience: int = 1
    min_improvement: float = 1.0

    def __post_init__(self) -> None:
        if not self.epochs or any(e < 1 for e in self.epochs) or list(self.epochs) != sorted(set(self.epochs)):
            raise ConfigError(f"rungs.epochs: expected increasing epochs >= 1, got {self.epochs}")
        if self.sessions < 2:
            raise ConfigError(f"rungs.sessions: must be >= 2, got {self.sessions}")
        if self.patience < 1:
            raise ConfigError(f"rungs.patience: must be >= 1, got {self.patience}")


@dataclass(frozen=True)
class ServingSearchConfig:
    """The serving choices a trial makes by itself, by simulation, after training.

    ``policies`` are tried with the knobs chosen so far; then each knob of the chosen policy (a
    ``serving.*`` field name → candidate values) one at a time, keeping the best (coordinate
    descent on ``sessions`` sessions of ``seed``, neither the rung nor the evaluation seed).
    """

    policies: list[str] = field(default_factory=lambda: ["indexed", "i2i"])
    knobs: dict[str, list[Any]] = field(default_factory=lambda: {
        "k": [100, 200], "like_threshold": [0.3, 0.5, 0.7, 0.9], "skip_artists": [0, 1, 2, 3, 5]})
    sessions: int = 3000
    seed: int = 27_182

    def __post_init__(self) -> None:
        if not self.policies:
            raise ConfigError("serving_search.policies: name at least one policy")
        if self.sessions < 2:
            raise ConfigError(f"serving_search.sessions: must be >= 2, got {self.sessions}")
        for key, values in self.knobs.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"serving_search.knobs.{key}: expected a non-empty list of values")


@dataclass(frozen=True)
class SamplerConfig:
    """Optuna's sampler: ``tpe`` (multivariate, grouped) or ``random`` (the baseline)."""

    kind: str = "tpe"
    n_startup_trials: int = 8  # random trials before TPE models the space (of 50)

    def __post_init__(self) -> None:
        if self.kind not in ("tpe", "random"):
            raise ConfigError(f"sampler.kind: expected 'tpe' or 'random', got {self.kind!r}")
        if self.n_startup_trials < 1:
            raise ConfigError(f"sampler.n_startup_trials: must be >= 1, got {self.n_startup_trials}")


@dataclass(frozen=True)
class AshaConfig:
    """ASHA on the rung lift (``rung_lift``, maximised); never used for ``--objective multi``.

    Milestones are ``grace_period * reduction_factor**i`` reports (one report per epoch), so the
    defaults 1 and 3 judge trials after epochs 1, 3 and 9: keep those among ``rungs.epochs``.
    """

    enabled: bool = True
    grace_period: int = 1
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
    rungs: RungConfig = field(default_factory=RungConfig)
    serving_search: ServingSearchConfig = field(default_factory=ServingSearchConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
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
