"""search.space's ``step`` for floats: a features.* float is sampled on a grid, so trials share
training-data settings and the data cache is reused rather than written once per trial."""
import dataclasses
import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

from model.config import ExperimentConfig, flatten, load_experiment_config
from sim_bridge.contract.files import ConfigError, with_overrides

from search.config import SamplerConfig, load_search_config, objective
from search.space import Param, on_grid, parse_space, to_optuna
from search.searcher import base_point, build_sampler, frozen_trials

REPO = Path(__file__).resolve().parents[2]
BASE = ExperimentConfig()
KEY = "features.positive_threshold"


def _repo_space():
    scfg = load_search_config(REPO / "configs" / "search.yaml")
    base = with_overrides(load_experiment_config(scfg.base), scfg.overrides)
    return parse_space(scfg.space, base), base


def test_the_repo_space_samples_the_positive_threshold_in_steps_of_0_05():
    spec, base = _repo_space()
    assert (spec[KEY].low, spec[KEY].high, spec[KEY].step) == (0.3, 0.8, 0.05)
    space = to_optuna(spec)
    assert space[KEY] == optuna.distributions.FloatDistribution(0.3, 0.8, step=0.05)
    floats = [k for k, p in spec.items() if k.startswith("features.") and p.type in ("uniform", "loguniform")]
    assert floats == [KEY]  # every other features.* knob is a choice
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=build_sampler(SamplerConfig(n_startup_trials=8), 0))
    seen = []
    for _ in range(40):
        trial = study.ask(space)
        seen.append(trial.params[KEY])
        study.tell(trial, -abs(trial.params[KEY] - 0.45) - trial.params["model.margin"])
    steps = [(v - 0.3) / 0.05 for v in seen]
    assert all(abs(k - round(k)) < 1e-9 and 0 <= round(k) <= 10 for k in steps)  # on the grid, inside the range
    assert len({round(k) for k in steps}) < len(seen) / 2  # values repeat: the cache gets hits
    point = base_point(spec, flatten(dataclasses.asdict(base)))  # the seed's configuration: the first trial
    assert point is not None and point[KEY] == 0.8


@pytest.mark.parametrize("sampler, error", [
    ({"type": "uniform", "low": 0.3, "high": 0.8}, r"space\.features\.positive_threshold: a features\.\* key "
                                                   r"changes the training data.*give it a grid.*step: 0\.05"),
    ({"type": "loguniform", "low": 0.3, "high": 0.8}, r"give it a grid"),
    ({"type": "uniform", "low": 0.3, "high": 0.8, "step": 0.07},
     r"space\.features\.positive_threshold: high - low \(0\.5\) must be a whole number of steps \(0\.07\)"),
    ({"type": "uniform", "low": 0.3, "high": 0.8, "step": 0}, r"'step' must be > 0 and at most high - low"),
    ({"type": "uniform", "low": 0.3, "high": 0.8, "step": 0.6}, r"'step' must be > 0 and at most high - low"),
    ({"type": "uniform", "low": 0.3, "high": 0.8, "step": "0.05"}, r"space\.features\.positive_threshold\.step"),
    ({"type": "loguniform", "low": 0.3, "high": 0.8, "step": 0.05}, r"'step' needs a linear scale"),
])
def test_a_bad_or_missing_step_is_refused_naming_the_key(sampler, error):
    with pytest.raises(ConfigError, match=error):
        parse_space({KEY: sampler}, BASE)


def test_steps_elsewhere_in_the_space():
    spec = parse_space({"model.margin": {"type": "uniform", "low": 0.1, "high": 1.0},  # not a data knob: continuous
                        "train.min_delta": {"type": "uniform", "low": 0.0, "high": 0.004, "step": 0.001},
                        "model.embedding_dim": {"type": "int", "low": 32, "high": 128, "step": 32}}, BASE)
    space = to_optuna(spec)
    assert space["model.margin"].step is None and space["train.min_delta"].step == 0.001
    assert space["model.embedding_dim"] == optuna.distributions.IntDistribution(32, 128, step=32)
    with pytest.raises(ConfigError, match=r"space\.model\.embedding_dim: type 'int' needs .* an integer step >= 1"):
        parse_space({"model.embedding_dim": {"type": "int", "low": 32, "high": 128, "step": 0.5}}, BASE)
    with pytest.raises(ConfigError, match=r"space\.model\.margin: 'log' applies to type 'int' only"):
        parse_space({"model.margin": {"type": "uniform", "low": 0.1, "high": 1.0, "log": True}}, BASE)


def test_on_grid():
    assert on_grid(0.8, 0.3, 0.05) and on_grid(0.3 + 6 * 0.05, 0.3, 0.05) and on_grid(0.62, 0.3, None)
    assert not on_grid(0.62, 0.3, 0.05) and on_grid(6, 2, 2) and not on_grid(5, 2, 2)


def test_off_grid_values_are_outside_the_space():
    spec = {KEY: Param("uniform", low=0.3, high=0.8, step=0.05)}
    assert base_point(spec, {KEY: 0.45}) == {KEY: 0.45} and base_point(spec, {KEY: 0.62}) is None
    # a warm start from a run whose threshold was continuous keeps only its on-grid trials (no crash)
    earlier = pd.DataFrame([{"trial_id": t, "status": "finished", "score": s, f"config/{KEY}": v}
                            for t, s, v in (("a", 1.0, 0.62), ("b", 2.0, 0.55), ("c", 3.0, 0.8000000001))])
    (kept,) = frozen_trials(earlier, spec, objective("score"))
    assert kept.params == {KEY: 0.55} and math.isclose(kept.value, 2.0)


def test_a_report_on_a_run_from_before_the_grid_still_rebuilds_its_study():
    """search.report rebuilds an Optuna study from trials.parquet with the config's distributions:
    thresholds sampled before the grid (off it) widen the distribution to a continuous one."""
    from search.report import space_distributions

    settings = {"config": str(REPO / "configs" / "search.yaml")}
    off = pd.DataFrame({f"config/{KEY}": [0.62, 0.41, 0.8]})
    dists, notes = space_distributions(settings, off)
    assert notes == [] and dists[KEY] == optuna.distributions.FloatDistribution(0.3, 0.8)
    optuna.trial.create_trial(params={KEY: 0.62}, distributions={KEY: dists[KEY]}, value=1.0)  # no ValueError
    on, _ = space_distributions(settings, pd.DataFrame({f"config/{KEY}": [0.3 + 6 * 0.05, 0.8]}))
    assert on[KEY].step == 0.05
