"""The built-in world's config: its generator, its logging run, --world-config."""
import os

import pytest

from sim_bridge import defaults
from sim_bridge.contract.files import ConfigError
from sim_bridge.worldgen import load_world_config


def test_a_world_config_may_name_its_logging_run(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("generator: v2\nlogging:\n  arms: [random, contextual_hidden]\n  sessions: 500\n")
    assert defaults.logging_config(path).arms == ["random", "contextual_hidden"]
    assert defaults.logging_config(path).sessions == 500
    assert load_world_config(path).generator == "v2"  # the section is not the generator's


def test_without_a_logging_section_the_shared_logging_run(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("generator: v1\n")
    assert defaults.logging_config(path) == defaults.load_yaml(defaults.DEFAULT_LOGGING_CONFIG, defaults.LoggingConfig)


def test_a_bad_logging_section_names_the_file(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("generator: v2\nlogging:\n  sessions: many\n")
    with pytest.raises(ConfigError, match=r"w.yaml: logging.sessions: expected an integer"):
        defaults.logging_config(path)


def test_use_world_config_checks_then_sets_the_built_in_world(tmp_path, monkeypatch):
    monkeypatch.setenv(defaults.WORLD_CONFIG_ENV, "")  # empty = unset; restored after the test
    assert defaults.world_config_path() == defaults.DEFAULT_WORLD_CONFIG
    bad = tmp_path / "bad.yaml"
    bad.write_text("generator: v2\nno_such_knob: 1\n")
    with pytest.raises(ConfigError, match="no_such_knob"):
        defaults.use_world_config(bad)
    assert os.environ[defaults.WORLD_CONFIG_ENV] == ""
    defaults.use_world_config(defaults.CONFIG_DIR / "world_v1.yaml")
    assert defaults.world_config_path() == (defaults.CONFIG_DIR / "world_v1.yaml").resolve()
