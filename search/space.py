"""The search space: YAML samplers over dotted config keys → a validated, typed spec.

In ``configs/search.yaml``::

    space:
      model.hidden_dim: {type: choice, values: [32, 64, 128]}
      train.weight_decay: {type: loguniform, low: 1.0e-6, high: 1.0e-2}
      train.min_delta: {type: uniform, low: 0.0, high: 0.005}
      model.embedding_dim: {type: int, low: 32, high: 128, step: 32}

Every key must be a field of the training config (checked by laying the sampler's extreme
values over the base config with ``configio.with_overrides``); every range must be sane. Errors
are ``ConfigError`` naming the key. The spec converts to Optuna distributions (what the searcher
samples) and to ``ray.tune`` domains (for Tune-native searchers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import optuna.distributions as od
from ray import tune

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
    step: int = 1  # int only

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
        if base is not None:
            _check_key(key, param, base)
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
        if not (float(p.low).is_integer() and float(p.high).is_integer()) or p.step < 1:
            raise bad(f"type 'int' needs integer low/high and step >= 1, got {p}")
        if p.log and p.step != 1:
            raise bad("type 'int' with log: true needs step 1")
    elif p.log or p.step != 1:
        raise bad("'log'/'step' apply to type 'int' only (use 'loguniform' for floats)")


def _check_key(key: str, p: Param, base: Any) -> None:
    for value in p.extremes():
        try:
            with_overrides(base, {key: value})
        except ConfigError as exc:
            raise ConfigError(f"space.{key}: {exc}") from None


def to_optuna(spec: dict[str, Param]) -> dict[str, od.BaseDistribution]:
    """Optuna distributions, keyed by the dotted config key."""
    out = {}
    for key, p in spec.items():
        if p.type == "choice":
            out[key] = od.CategoricalDistribution(list(p.values))
        elif p.type == "int":
            out[key] = od.IntDistribution(int(p.low), int(p.high), log=p.log, step=p.step)
        else:
            out[key] = od.FloatDistribution(p.low, p.high, log=p.type == "loguniform")
    return out


def to_tune(spec: dict[str, Param]) -> dict[str, Any]:
    """``ray.tune`` domains, keyed by the dotted config key (Tune's int upper bound is exclusive)."""
    out = {}
    for key, p in spec.items():
        if p.type == "choice":
            out[key] = tune.choice(list(p.values))
        elif p.type == "int":
            low, high = int(p.low), int(p.high)
            if p.log:
                out[key] = tune.lograndint(low, high + 1)
            else:
                out[key] = tune.qrandint(low, high, p.step) if p.step > 1 else tune.randint(low, high + 1)
        elif p.type == "loguniform":
            out[key] = tune.loguniform(p.low, p.high)
        else:
            out[key] = tune.uniform(p.low, p.high)
    return out


def touches_features(spec: dict[str, Param]) -> bool:
    """True when a sampled key changes the features, so each trial must build its own data."""
    return any(key.startswith("features.") for key in spec)
