"""search.config: the search settings, the space and the smoke settings are validated before Ray starts."""
import dataclasses
from pathlib import Path

import optuna.distributions as od
import pytest

from model.config import ExperimentConfig, flatten, load_experiment_config
from sim_bridge.contract.recs import ServingConfig
from sim_bridge.contract.files import ConfigError, with_overrides

from search.config import (ServingSearchConfig, check_serving_search, load_search_config, load_smoke,
                           parse_benchmark_args)
from search.searcher import base_point
from search.space import parse_space, to_optuna, touches_features

REPO = Path(__file__).resolve().parents[2]
BASE = ExperimentConfig()


def test_repo_search_yaml_validates_against_train_yaml():
    scfg = load_search_config(REPO / "configs" / "search.yaml")
    base = with_overrides(load_experiment_config(scfg.base), scfg.overrides)
    spec = parse_space(scfg.space, base)
    required = {"model.hidden_dim", "model.embedding_dim", "train.weight_decay", "model.dense_depth",
                "model.norm", "train.lr", "model.margin", "features.n_negatives", "features.min_positives"}
    assert required <= set(spec)
    assert spec["train.weight_decay"].type == "loguniform"
    assert scfg.eval.sessions >= 10_000


def test_the_default_search_holds_what_the_focused_one_found():
    scfg = load_search_config(REPO / "configs" / "search.yaml")
    base = with_overrides(load_experiment_config(scfg.base), scfg.overrides)
    spec = parse_space(scfg.space, base)
    # the winning corner is the first trial (the seed's model, min_positives 1, i2i) and in the space
    assert (base.serving.policy, base.features.min_positives) == ("i2i", 1)
    assert 1 in spec["features.min_positives"].values
    assert base_point(spec, flatten(dataclasses.asdict(base))) is not None
    # serving is chosen inside each trial, not by Optuna; rungs and ASHA on by default
    assert not any(key.startswith("serving.") for key in spec)
    assert {"indexed", "i2i"} <= set(scfg.serving_search.policies)
    assert scfg.rungs.enabled and scfg.asha.enabled and scfg.sampler.kind == "tpe"
    milestones = {scfg.asha.grace_period * scfg.asha.reduction_factor ** i for i in range(5)}
    milestones = {m for m in milestones if m <= base.train.max_epochs}
    assert milestones and milestones <= set(scfg.rungs.epochs)  # ASHA judges trials at rungs, on fresh lifts
    assert scfg.rungs.epochs[-1] == base.train.max_epochs
    check_serving_search(scfg.serving_search, base.serving)


@pytest.mark.parametrize("raw, match", [
    ({"model.hidden_dimm": {"type": "choice", "values": [32]}}, r"space\.model\.hidden_dimm: unknown key 'model\.hidden_dimm'"),
    ({"optim.lr": {"type": "uniform", "low": 0.1, "high": 0.2}}, r"space\.optim\.lr: unknown key"),
    ({"train.lr": {"type": "uniform", "low": 0.2, "high": 0.1}}, r"space\.train\.lr: needs finite low < high"),
    ({"train.lr": {"type": "loguniform", "low": 0.0, "high": 0.1}}, r"space\.train\.lr: a log scale needs low > 0"),
    ({"model.hidden_dim": {"type": "choice", "values": []}}, r"space\.model\.hidden_dim: type 'choice' needs"),
    ({"model.hidden_dim": {"type": "int", "low": 1.5, "high": 8}}, r"space\.model\.hidden_dim: type 'int' needs integer"),
    ({"model.hidden_dim": {"type": "gaussian", "low": 1, "high": 8}}, r"space\.model\.hidden_dim\.type: expected one of"),
    ({"model.hidden_dim": {"type": "int", "low": 1, "high": 8, "stepp": 2}}, r"unknown key 'space\.model\.hidden_dim\.stepp'"),
    ({"model.norm": {"type": "choice", "values": ["layernorm", "batchnorm"]}}, r"space\.model\.norm: .*model\.norm: expected one of"),
    ({"model.hidden_dim": {"type": "int", "low": 0, "high": 8}}, r"space\.model\.hidden_dim: .*must be >= 1"),
    ({"train.lr": {"type": "uniform", "low": "fast", "high": 0.1}}, r"space\.train\.lr\.low: expected a number"),
    ({"model.hidden_dim": {"type": "choice", "values": [32, "wide"]}}, r"space\.model\.hidden_dim: .*expected an integer"),
])
def test_bad_space_names_the_key(raw, match):
    with pytest.raises(ConfigError, match=match):
        parse_space(raw, BASE)


def test_empty_space_is_an_error():
    with pytest.raises(ConfigError, match="space: expected a non-empty mapping"):
        parse_space({}, BASE)


def test_unknown_top_level_key_in_search_yaml(tmp_path):
    (tmp_path / "search.yaml").write_text("base: train.yaml\noverrides: {}\nspace: {}\nobjektive: {}\n")
    with pytest.raises(ConfigError, match=r"search\.yaml: unknown key 'objektive'"):
        load_search_config(tmp_path / "search.yaml")


def test_bad_eval_sessions_names_the_key(tmp_path):
    (tmp_path / "search.yaml").write_text("base: train.yaml\noverrides: {}\nspace: {}\neval: {sessions: 0}\n")
    with pytest.raises(ConfigError, match=r"eval\.sessions: must be >= 1"):
        load_search_config(tmp_path / "search.yaml")


def test_yaml_exponent_without_dot_is_accepted():
    spec = parse_space({"train.weight_decay": {"type": "loguniform", "low": "1e-6", "high": "1e-2"}}, BASE)
    assert spec["train.weight_decay"].low == 1e-6


def test_conversions():
    spec = parse_space({
        "model.hidden_dim": {"type": "choice", "values": [32, 64]},
        "train.weight_decay": {"type": "loguniform", "low": 1e-6, "high": 1e-2},
        "train.min_delta": {"type": "uniform", "low": 0.0, "high": 0.005},
        "model.embedding_dim": {"type": "int", "low": 32, "high": 128, "step": 32},
    }, BASE)
    ot = to_optuna(spec)
    assert ot["model.hidden_dim"] == od.CategoricalDistribution([32, 64])
    assert ot["train.weight_decay"] == od.FloatDistribution(1e-6, 1e-2, log=True)
    assert ot["train.min_delta"] == od.FloatDistribution(0.0, 0.005)
    assert ot["model.embedding_dim"] == od.IntDistribution(32, 128, step=32)
    assert not touches_features(spec)
    assert touches_features({**spec, **parse_space({"features.n_negatives": {"type": "choice", "values": [5]}}, BASE)})


def test_a_world_without_its_logs_is_refused():
    from search.errors import SearchError
    from search.run import resolve_paths

    with pytest.raises(SearchError, match="--world needs --logs"):
        resolve_paths("some/world", None, smoke=False)


def test_every_benchmarks_smoke_section_names_its_own_flags(tmp_path):
    """configs/smoke.yaml loads; a benchmark's smoke values become its flags' defaults, a flag
    given on the command line wins, and a key that is not a flag is refused naming it."""
    import argparse

    smoke = load_smoke()
    assert smoke.search.num_samples >= 1 and smoke.search.overrides["train.max_epochs"] >= 1
    benches = {p.stem for p in (REPO / "benchmarks").glob("*.py")}
    assert set(smoke.benchmarks) == benches  # every benchmark has a smoke mode, and nothing else does
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--smoke", action="store_true")
    path = tmp_path / "smoke.yaml"
    path.write_text("benchmarks:\n  b: {sessions: 7}\n")
    assert parse_benchmark_args(parser, "b", [], path).sessions == 50_000
    assert parse_benchmark_args(parser, "b", ["--smoke"], path).sessions == 7
    assert parse_benchmark_args(parser, "b", ["--smoke", "--sessions", "9"], path).sessions == 9
    path.write_text("benchmarks:\n  b: {sesions: 7}\n")
    with pytest.raises(ConfigError, match=r"smoke\.yaml: benchmarks\.b\.sesions: not a flag of b"):
        parse_benchmark_args(parser, "b", ["--smoke"], path)


def test_bad_candidates_fail_with_their_key():
    with pytest.raises(ConfigError, match="serving_search.policies.*bogus"):
        check_serving_search(ServingSearchConfig(policies=["bogus"]), ServingConfig())
    with pytest.raises(ConfigError, match="serving_search.knobs.k"):
        check_serving_search(ServingSearchConfig(knobs={"k": [0]}, stepped=[]), ServingConfig())
    with pytest.raises(ConfigError, match="serving_search.knobs.nope"):
        check_serving_search(ServingSearchConfig(knobs={"nope": [1]}, stepped=[]), ServingConfig())
    with pytest.raises(ConfigError, match="serving_search.stepped: 'skip' is not one of the knobs"):
        ServingSearchConfig(knobs={"k": [10]}, stepped=["skip"])
    with pytest.raises(ConfigError, match="serving_search.knobs.k: a stepped knob's values must be in ascending"):
        ServingSearchConfig(knobs={"k": [20, 10]}, stepped=["k"])


def test_the_code_defaults_are_search_yaml():
    """configs/search.yaml and the config dataclasses' defaults say the same: a search config made
    of the code's defaults (given the YAML's base, overrides and space, which have none) equals
    the YAML's, and so does the TrialSetup every trial of it gets."""
    from search.config import SearchConfig
    from search.run import trial_setup

    from_yaml = load_search_config(REPO / "configs" / "search.yaml")
    from_code = SearchConfig(base=from_yaml.base, overrides=from_yaml.overrides, space=from_yaml.space)
    assert from_code == from_yaml
    assert trial_setup(from_code, per_trial_data=False) == trial_setup(from_yaml, per_trial_data=False)


def test_the_code_defaults_are_smoke_yaml_and_calibrate_yaml():
    """The same for configs/smoke.yaml (given its dotted overrides, world and benchmark flags)
    and configs/calibrate.yaml (given its space)."""
    from search.calibrate import CalibrateConfig
    from search.config import CalibrateSmoke, SearchSmoke, SeedTableSmoke, SmokeConfig
    from sim_bridge.contract.files import load_yaml

    smoke = load_smoke()
    assert SmokeConfig(search=SearchSmoke(overrides=smoke.search.overrides),
                       seed_table=SeedTableSmoke(overrides=smoke.seed_table.overrides),
                       calibrate=CalibrateSmoke(world=smoke.calibrate.world),
                       benchmarks=smoke.benchmarks) == smoke
    calibrate = load_yaml(REPO / "configs" / "calibrate.yaml", CalibrateConfig)
    assert CalibrateConfig(space=calibrate.space) == calibrate


@pytest.mark.parametrize("missing", ["overrides", "space"])
def test_a_search_yaml_must_say_its_overrides_and_space(tmp_path, missing):
    text = {"base": "base: train.yaml\n", "overrides": "overrides: {train.max_epochs: 1}\n",
            "space": "space: {train.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}}\n"}
    del text[missing]
    (tmp_path / "search.yaml").write_text("".join(text.values()))
    with pytest.raises(ConfigError, match=rf"search\.yaml: {missing}: missing required key"):
        load_search_config(tmp_path / "search.yaml")
