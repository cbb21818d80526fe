"""The search's settings: ``configs/search.yaml`` and ``configs/smoke.yaml`` → typed dataclasses.

Both go through the one YAML loader (``sim_bridge.contract.files``: unknown keys and wrong types fail
naming the key). ``search.yaml`` names a base training config (the seed's best), lays a search
space of dotted keys over it, and fixes the objective, the simulated evaluation, the rungs (cheap
paired lifts during training), the serving choices tuned inside each trial, the sampler and the
ASHA scheduler. ``smoke.yaml`` holds every command's and benchmark's smoke mode in one place.
The space itself (its samplers and their checks) is :mod:`search.space`.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sim_bridge.contract.recs import ServingConfig
from sim_bridge.contract.files import ConfigError, from_dict, read_yaml, with_overrides

REPO = Path(__file__).resolve().parent.parent
SEARCH_FILE = REPO / "configs" / "search.yaml"
SMOKE_FILE = REPO / "configs" / "smoke.yaml"
OBJECTIVES = ("score", "lift", "val_loss", "multi")


@dataclass(frozen=True)
class Objective:
    """The metric(s) and mode(s) the searcher optimises (``--objective``)."""

    metric: str | list[str]
    mode: str | list[str]

    @property
    def multi(self) -> bool:
        return isinstance(self.metric, list)


def objective(name: str) -> Objective:
    """``score``/``lift`` maximise; ``val_loss`` minimises; ``multi``: (val_loss ↓, time ↑)."""
    table = {
        "score": Objective("score", "max"),
        "lift": Objective("lift_vs_sticky", "max"),
        "val_loss": Objective("val_loss", "min"),
        "multi": Objective(["val_loss", "time_per_session"], ["min", "max"]),
    }
    if name not in table:
        raise ValueError(f"unknown objective {name!r} (choose from {', '.join(OBJECTIVES)})")
    return table[name]


@dataclass(frozen=True)
class ObjectiveConfig:
    """``score = lift_weight * lift_vs_sticky(%) - val_loss_weight * val_loss / model.margin``
    (higher is better; see :func:`search.trial.score` for why the margin)."""

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


FIRST_RUNG = ("start", "policies", "search")  # how a trial's first rung chooses its serving


@dataclass(frozen=True)
class RungConfig:
    """Cheap paired lifts vs sticky_artist while a trial trains (multi-fidelity on the objective).

    After each epoch in ``epochs`` the trial serves its current model on ``sessions`` sessions of
    its own ``seed`` — never the evaluation seed — and reports the lift as ``rung_lift``. The
    first rung chooses the serving the later ones keep: ``first_rung: start`` (the config's serving
    as it is: one simulation a rung), ``policies`` (each candidate policy at the config's knobs,
    one simulation each) or ``search`` (the whole serving search, each policy at its best knobs:
    one simulation per candidate). A trial stops by itself after
    ``patience`` rungs in a row that do not beat its best rung lift by ``min_improvement`` points,
    and at the last rung at the latest; it is served with the weights of its best rung.
    """

    enabled: bool = True  # false: multi-fidelity off (no rungs, no ASHA; train to max_epochs)
    epochs: list[int] = field(default_factory=lambda: [1, 2])
    sessions: int = 2000
    seed: int = 31_337
    patience: int = 1
    min_improvement: float = 1.0
    first_rung: str = "start"  # start | policies | search: how the first rung chooses the serving

    def __post_init__(self) -> None:
        if self.first_rung not in FIRST_RUNG:
            raise ConfigError(f"rungs.first_rung: expected one of {', '.join(FIRST_RUNG)}, got {self.first_rung!r}")
        if not self.epochs or any(e < 1 for e in self.epochs) or list(self.epochs) != sorted(set(self.epochs)):
            raise ConfigError(f"rungs.epochs: expected increasing epochs >= 1, got {self.epochs}")
        if self.sessions < 2:
            raise ConfigError(f"rungs.sessions: must be >= 2, got {self.sessions}")
        if self.patience < 1:
            raise ConfigError(f"rungs.patience: must be >= 1, got {self.patience}")


@dataclass(frozen=True)
class ServingSearchConfig:
    """The serving choices a trial makes by itself, by simulation, after training.

    Each of ``policies`` is tuned over the knobs it reads (a ``serving.*`` field name → candidate
    values), one knob at a time (coordinate descent on ``sessions`` sessions of ``seed``, neither
    the rung nor the evaluation seed); the best policy at its best knobs wins. A knob tries every
    value of its grid, or, when it is in ``stepped``, steps to a neighbouring value of its
    (ordered) grid while that improves the lift.
    """

    policies: list[str] = field(default_factory=lambda: ["indexed", "i2i", "contextual", "botify_i2i"])
    knobs: dict[str, list[Any]] = field(default_factory=lambda: {
        "k": [100, 200], "like_threshold": [0.3, 0.5, 0.7, 0.9, 0.95, 1.01],
        "skip_artists": [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]})
    stepped: list[str] = field(default_factory=lambda: ["skip_artists"])
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
        for key in self.stepped:
            if key not in self.knobs:
                raise ConfigError(f"serving_search.stepped: {key!r} is not one of the knobs ({', '.join(self.knobs)})")
            if self.knobs[key] != sorted(self.knobs[key]):
                raise ConfigError(f"serving_search.knobs.{key}: a stepped knob's values must be in ascending order")


SAMPLERS = ("tpe", "gp", "random")


@dataclass(frozen=True)
class SamplerConfig:
    """Optuna's sampler: ``tpe`` (multivariate, grouped), ``gp`` (Gaussian process) or ``random``
    (the baseline)."""

    kind: str = "tpe"
    n_startup_trials: int = 8  # random trials before TPE (or the GP) models the space

    def __post_init__(self) -> None:
        if self.kind not in SAMPLERS:
            raise ConfigError(f"sampler.kind: expected one of {', '.join(SAMPLERS)}, got {self.kind!r}")
        if self.n_startup_trials < 1:
            raise ConfigError(f"sampler.n_startup_trials: must be >= 1, got {self.n_startup_trials}")


@dataclass(frozen=True)
class AshaConfig:
    """ASHA on the rung lift (``rung_lift``, maximised); never used for ``--objective multi``.

    Milestones are ``grace_period * reduction_factor**i`` reports (one report per epoch): with
    grace period 1 and reduction factor 4, trials are judged after epochs 1, 4, 16, ... (those that
    ``train.max_epochs`` reaches), each time keeping the top quarter; keep the milestones among
    ``rungs.epochs``, so ASHA judges fresh rung lifts.
    """

    enabled: bool = True
    grace_period: int = 1
    reduction_factor: int = 4

    def __post_init__(self) -> None:
        if self.grace_period < 1:
            raise ConfigError(f"asha.grace_period: must be >= 1, got {self.grace_period}")
        if self.reduction_factor < 2:
            raise ConfigError(f"asha.reduction_factor: must be >= 2, got {self.reduction_factor}")


@dataclass(frozen=True)
class SearchConfig:
    """The whole of ``configs/search.yaml``; ``base`` is resolved relative to that file.

    Every default here is the value ``configs/search.yaml`` gives (a test holds them equal); the
    base, the overrides and the space have none: a search config must say them.
    """

    base: str
    overrides: dict[str, Any]  # dotted keys laid over the base for every trial
    space: dict[str, Any]
    variant: str | None = None
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    rungs: RungConfig = field(default_factory=RungConfig)
    serving_search: ServingSearchConfig = field(default_factory=ServingSearchConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    asha: AshaConfig = field(default_factory=AshaConfig)


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


def check_serving_search(cfg: ServingSearchConfig, serving: ServingConfig) -> None:
    """Every candidate policy and knob value must make a valid ``serving`` config (ConfigError)."""
    for policy in cfg.policies:
        _apply(serving, {"policy": policy}, "serving_search.policies")
    for key, values in cfg.knobs.items():
        for value in values:
            _apply(serving, {key: value}, f"serving_search.knobs.{key}")


def _apply(serving: ServingConfig, changes: dict, where: str) -> ServingConfig:
    try:
        return with_overrides(serving, changes)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# ---------------------------------------------------------------- smoke mode (configs/smoke.yaml)


@dataclass(frozen=True)
class SearchSmoke:
    """``python -m search.run --smoke-test``: dotted training overrides, fewer sessions and samples."""

    overrides: dict[str, Any] = field(default_factory=dict)
    sessions: int = 300  # the evaluation's, the rungs' and the serving search's
    num_samples: int = 3
    confirm_sessions: list[int] = field(default_factory=lambda: [300, 600])  # search.run --confirm's A/B sizes


@dataclass(frozen=True)
class SeedTableSmoke:
    """``python -m search.seed_table --smoke``: dotted training overrides of every variant."""

    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CalibrateSmoke:
    """``python -m search.calibrate --smoke``: laid over the settings and the world config."""

    world: dict[str, Any] = field(default_factory=dict)
    num_samples: int = 2
    logging_sessions: int = 2_000
    baseline_sessions: int = 500
    ab_sessions: int = 400
    gate_pct: float = 100.0


@dataclass(frozen=True)
class SmokeConfig:
    """The whole of ``configs/smoke.yaml``; ``benchmarks``: script name → its flags' smoke values."""

    search: SearchSmoke = field(default_factory=SearchSmoke)
    seed_table: SeedTableSmoke = field(default_factory=SeedTableSmoke)
    calibrate: CalibrateSmoke = field(default_factory=CalibrateSmoke)
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_smoke(path: str | Path = SMOKE_FILE) -> SmokeConfig:
    """Load and type-check ``configs/smoke.yaml``; errors name the file and the key."""
    try:
        return from_dict(SmokeConfig, read_yaml(path))
    except ConfigError as exc:
        raise ConfigError(exc.args[0] if str(exc).startswith(str(path)) else f"{path}: {exc}") from None


def parse_benchmark_args(parser: argparse.ArgumentParser, script: str, argv: list[str] | None = None,
                         path: str | Path = SMOKE_FILE) -> argparse.Namespace:
    """``parser``'s arguments; with ``--smoke``, ``benchmarks.<script>`` of ``configs/smoke.yaml``
    gives the flags' defaults (a flag on the command line still wins). A key that is not one of
    the script's flags is a ConfigError naming it."""
    args = parser.parse_args(argv)
    if not getattr(args, "smoke", False):
        return args
    values = load_smoke(path).benchmarks.get(script)
    if values is None:
        raise ConfigError(f"{path}: benchmarks: no section '{script}'")
    flags = {a.dest for a in parser._actions} - {"help", "smoke"}
    unknown = sorted(set(values) - flags)
    if unknown:
        raise ConfigError(f"{path}: benchmarks.{script}.{unknown[0]}: not a flag of {script} "
                          f"(flags: {', '.join(sorted(flags))})")
    parser.set_defaults(**values)
    return parser.parse_args(argv)


def search_defaults(smoke: bool, threads: int):
    """(search config, base training config) of ``configs/search.yaml`` as its trials train them
    (overrides laid over the base, ``threads`` torch threads), in smoke mode if ``smoke`` — what
    the benchmarks run a search trial with, outside Ray."""
    from model.config import load_experiment_config

    scfg = load_search_config(REPO / "configs" / "search.yaml")
    scfg = with_smoke(scfg, load_smoke().search) if smoke else scfg
    base = with_overrides(load_experiment_config(scfg.base), {**scfg.overrides, "train.num_threads": threads})
    return scfg, base


def with_smoke(scfg: SearchConfig, smoke: SearchSmoke) -> SearchConfig:
    """``scfg`` in smoke mode: the smoke overrides laid over its own, fewer sessions everywhere."""
    return replace(scfg, overrides={**scfg.overrides, **smoke.overrides},
                   eval=replace(scfg.eval, sessions=smoke.sessions),
                   rungs=replace(scfg.rungs, sessions=smoke.sessions),
                   serving_search=replace(scfg.serving_search, sessions=smoke.sessions))
