"""The search space: dotted keys of the training config, each with a sampler, as ``search.yaml``'s
``space:`` gives them::

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

import math
from dataclasses import dataclass
from typing import Any, Literal

import optuna.distributions as od

from sim_bridge.contract.files import ConfigError, from_dict, with_overrides


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
