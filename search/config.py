"""The search's settings: ``configs/search.yaml`` and ``configs/smoke.yaml`` → typed dataclasses.

Both go through the one YAML loader (``sim_bridge.contract.files``: unknown keys and wrong types fail
naming the key). ``search.yaml`` names a base training config (the seed's best), lays a search
space of dotted keys over it, and fixes the objective, the simulated evaluation, the rungs (cheap
paired lifts during training), the serving choices tuned inside each trial, the sampler and the
ASHA scheduler. ``smoke.yaml`` holds every command's and benchmark's smoke mode in one place.

The space, in ``search.yaml``::

    space:
      model.hidden_dim: {type: choice, values: [32, 64, 128]}
      train.weight_decay: {type: loguniform, low: 1.0e-6, high: 1.0e-2}
      train.min_delta: {type: uniform, low: 0.0, high: 0.005}
      model.embedding_dim: {type: int, low: 32, high: 128, step: 32}
      features.positive_threshold: {type: uniform, low: 0.3, high: 0.8, step: 0.05}

Every key must be a field of the training config (checked by laying the sampler's extreme values
over the base config); every range must be sane; the spec converts to Optuna distributions. A
``features.*`` key changes the training data, which is cached per distinct setting
(:mod:`search.data_cache`): it must be discrete (a choice, an int, or a uniform with a ``step``),
so that trials share settings and the cache is reused.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import optuna.distributions as od

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
    ~10x the simulations). A trial stops by itself after
    ``patience`` rungs in a row that do not beat its best rung lift by ``min_improvement`` points,
    and at the last rung at the latest; it is served with the weights of its best rung.
    """

    enabled: bool = True  # false: multi-fidelity off (no rungs, no ASHA; train to max_epochs)
    epochs: list[int] = field(default_factory=lambda: [1, 3, 6, 9, 12])
    sessions: int = 3000
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

    policies: list[str] = field(default_factory=lambda: ["indexed", "i2i"])
    knobs: dict[str, list[Any]] = field(default_factory=lambda: {
        "k": [100, 200], "like_threshold": [0.3, 0.5, 0.7, 0.9], "skip_artists": [0, 1, 2, 3, 5]})
    stepped: list[str] = field(default_factory=list)
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
    n_startup_trials: int = 8  # random trials before TPE (or the GP) models the space (of 50)

    def __post_init__(self) -> None:
        if self.kind not in SAMPLERS:
            raise ConfigError(f"sampler.kind: expected one of {', '.join(SAMPLERS)}, got {self.kind!r}")
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


# ---------------------------------------------------------------- the space


Kind = Literal["choice", "uniform", "loguniform", "int"]


@dataclass(frozen=True)
class Param:
    """One sampler. ``choice`` uses ``values``; the others ``low``/``high`` (inclusive)."""

    type: Kind
    values: list[Any] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False  # int only
    step: int | float | None = None  # int: its grid (default 1); uniform: sample low, low + step, ..., high

    def extremes(self) -> list[Any]:
        """The values whose acceptance by the config proves every sample is acceptable."""
        if self.type == "choice":
            return list(self.values)
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]


def parse_space(raw: dict[str, Any], base: Any | None = None) -> dict[str, Param]:
    """Parse and check ``raw`` (key → sampler mapping); with ``base`` also check each key."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("space: expected a non-empty mapping of dotted keys to samplers")
    spec = {}
    for key, sampler in raw.items():
        param = from_dict(Param, _yaml_floats(sampler), prefix=f"space.{key}")
        _check_param(key, param)
        _check_data_knob(key, param)
        if base is not None:
            check_key(key, param, base)
        spec[key] = param
    return spec


def _yaml_floats(sampler: Any) -> Any:
    # YAML 1.1 reads ``1e-6`` (no dot) as a string; accept it for low/high.
    if not isinstance(sampler, dict):
        return sampler
    out = dict(sampler)
    for bound in ("low", "high"):
        if isinstance(out.get(bound), str):
            try:
                out[bound] = float(out[bound])
            except ValueError:
                pass  # left as a string: from_dict names the key
    return out


def _check_param(key: str, p: Param) -> None:
    def bad(why: str) -> ConfigError:
        return ConfigError(f"space.{key}: {why}")

    if p.type == "choice":
        if not p.values:
            raise bad("type 'choice' needs a non-empty 'values' list")
        if p.low is not None or p.high is not None:
            raise bad("type 'choice' takes 'values', not 'low'/'high'")
        return
    if p.values is not None:
        raise bad(f"type '{p.type}' takes 'low'/'high', not 'values'")
    if p.low is None or p.high is None:
        raise bad(f"type '{p.type}' needs both 'low' and 'high'")
    if not (math.isfinite(p.low) and math.isfinite(p.high)) or p.low >= p.high:
        raise bad(f"needs finite low < high, got low={p.low}, high={p.high}")
    if (p.type == "loguniform" or p.log) and p.low <= 0:
        raise bad(f"a log scale needs low > 0, got low={p.low}")
    if p.type == "int":
        if not (float(p.low).is_integer() and float(p.high).is_integer()) or not _int_step(p.step):
            raise bad(f"type 'int' needs integer low/high and an integer step >= 1, got {p}")
        if p.log and p.step not in (None, 1):
            raise bad("type 'int' with log: true needs step 1")
    elif p.log:
        raise bad("'log' applies to type 'int' only (use 'loguniform' for floats)")
    elif p.step is not None:
        _check_float_step(p, bad)


def _int_step(step: int | float | None) -> bool:
    return step is None or (isinstance(step, int) and step >= 1)


def _check_float_step(p: Param, bad) -> None:
    """A uniform's ``step``: > 0 and dividing ``high - low`` (Optuna would move ``high`` otherwise)."""
    if p.type == "loguniform":
        raise bad("'step' needs a linear scale: use type 'uniform' (or a 'choice' of values)")
    if not (math.isfinite(p.step) and 0 < p.step <= p.high - p.low):
        raise bad(f"'step' must be > 0 and at most high - low ({p.high - p.low:g}), got {p.step}")
    if not on_grid(p.high, p.low, p.step):
        raise bad(f"high - low ({p.high - p.low:g}) must be a whole number of steps ({p.step:g})")


def on_grid(value: float, low: float, step: int | float | None) -> bool:
    """Whether ``value`` is ``low + k * step`` for a whole k (always, without a step)."""
    if step is None:
        return True
    k = (value - low) / step
    return abs(k - round(k)) < 1e-8


def _check_data_knob(key: str, p: Param) -> None:
    """A ``features.*`` float must be stepped: every distinct value is a training-data cache entry."""
    if key.startswith("features.") and p.type in ("uniform", "loguniform") and p.step is None:
        raise ConfigError(f"space.{key}: a features.* key changes the training data, built and cached "
                          f"once per distinct value: give it a grid, e.g. {{type: uniform, low: {p.low}, "
                          f"high: {p.high}, step: 0.05}}, or use a 'choice' of values")


def check_key(key: str, p: Param, base: Any, label: str | None = None) -> None:
    """Refuse a sampler whose extremes ``base`` does not take at dotted ``key``; the error names
    ``space.<label>`` (default: the key)."""
    for value in p.extremes():
        try:
            with_overrides(base, {key: value})
        except ConfigError as exc:
            raise ConfigError(f"space.{label or key}: {exc}") from None


def to_optuna(spec: dict[str, Param]) -> dict[str, od.BaseDistribution]:
    """Optuna distributions, keyed by the dotted config key."""
    out = {}
    for key, p in spec.items():
        if p.type == "choice":
            out[key] = od.CategoricalDistribution(list(p.values))
        elif p.type == "int":
            out[key] = od.IntDistribution(int(p.low), int(p.high), log=p.log, step=p.step or 1)
        else:
            out[key] = od.FloatDistribution(p.low, p.high, log=p.type == "loguniform", step=p.step)
    return out


def touches_features(spec: dict[str, Param]) -> bool:
    """True when a sampled key changes the features, so each trial must build its own data."""
    return any(key.startswith("features.") for key in spec)


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
