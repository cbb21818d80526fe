"""The config loader: strict types with file:key errors, and ``extends:`` (override, nested merge,
missing base, cycles); JSON-lines records."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from sim_bridge.contract.files import ConfigError, from_dict, load_yaml, parse_object, read_yaml, with_overrides
from sim_bridge.defaults import CONFIG_DIR, LoggingConfig, _digest, logging_config
from sim_bridge.policy_specs import reads_hidden_truth
from sim_bridge.worldgen import load_world_config


@dataclass
class Inner:
    k: int = 1
    rate: float = 0.5
    mode: Literal["fast", "slow"] = "fast"

    def __post_init__(self) -> None:
        if self.k < 0:
            raise ConfigError(f"inner.k: must be >= 0, got {self.k}")


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    arms: list[str] = field(default_factory=list)
    flag: bool = False
    note: str | None = None


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- strict types, named keys


def test_a_mapping_fills_nested_dataclasses_and_an_integer_fills_a_float():
    cfg = from_dict(Outer, {"inner": {"k": 3, "rate": 2}, "arms": ["a", "b"], "note": None})
    assert cfg == Outer(inner=Inner(k=3, rate=2.0), arms=["a", "b"])
    assert isinstance(cfg.inner.rate, float)


@pytest.mark.parametrize("data, message", [
    ({"inner": {"k": "3"}}, r"^inner\.k: expected an integer, got '3'$"),
    ({"inner": {"k": True}}, r"^inner\.k: expected an integer, got True$"),
    ({"inner": {"k": 1.5}}, r"^inner\.k: expected an integer, got 1\.5$"),
    ({"inner": {"rate": "fast"}}, r"^inner\.rate: expected a number, got 'fast'$"),
    ({"flag": 1}, r"^flag: expected true/false, got 1$"),
    ({"name": 3}, r"^name: expected a string, got 3$"),
    ({"inner": {"mode": "medium"}}, r"^inner\.mode: expected one of 'fast', 'slow', got 'medium'$"),
    ({"arms": "ab"}, r"^arms: expected a list, got str$"),
    ({"arms": ["a", 2]}, r"^arms\[1\]: expected a string, got 2$"),
    ({"inner": 5}, r"^inner: expected a mapping, got int$"),
    ({"inner": {"kk": 1}}, r"^unknown key 'inner\.kk' \(allowed: k, mode, rate\)$"),
    ({"colour": 1}, r"^unknown key 'colour' \(allowed: arms, flag, inner, name, note\)$"),
    ({"inner": {"k": -1}}, r"^inner\.k: must be >= 0, got -1$"),
])  # fmt: skip
def test_wrong_types_and_unknown_keys_name_the_dotted_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_load_yaml_names_the_file_and_the_section(tmp_path):
    path = write(tmp_path / "c.yaml", "run:\n  inner:\n    rate: fast\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: run\.inner\.rate: expected a number, got 'fast'"):
        load_yaml(path, Outer, section="run")


def test_overrides_are_checked_like_the_file():
    cfg = with_overrides(Outer(), {"inner.k": 4})
    assert cfg.inner.k == 4
    with pytest.raises(ConfigError, match=r"inner\.k: expected an integer"):
        with_overrides(cfg, {"inner.k": "4"})
    with pytest.raises(ConfigError, match="unknown key 'inner.depth'"):
        with_overrides(cfg, {"inner.depth": 2})


# --------------------------------------------------------------------------- extends


def test_extends_overrides_only_what_differs_and_merges_nested_mappings(tmp_path):
    write(tmp_path / "base.yaml", "name: base\ninner: {k: 1, rate: 0.25}\narms: [a, b]\n")
    child = write(tmp_path / "child.yaml", "extends: base.yaml\ninner: {k: 7}\narms: [c]\n")
    assert read_yaml(child) == {"name": "base", "inner": {"k": 7, "rate": 0.25}, "arms": ["c"]}
    assert load_yaml(child, Outer) == Outer(name="base", inner=Inner(k=7, rate=0.25), arms=["c"])


def test_extends_null_removes_a_key_of_the_base_so_its_default_applies(tmp_path):
    write(tmp_path / "base.yaml", "name: base\ninner: {k: 3, rate: 0.25}\narms: [a, b]\n")
    child = write(tmp_path / "child.yaml", "extends: base.yaml\ninner: {rate: null}\narms: ~\nnote: null\n")
    assert read_yaml(child) == {"name": "base", "inner": {"k": 3}}
    assert load_yaml(child, Outer) == Outer(name="base", inner=Inner(k=3, rate=0.5), arms=[])


def test_extends_is_relative_to_the_file_and_chains(tmp_path):
    write(tmp_path / "base.yaml", "name: base\nflag: true\n")
    write(tmp_path / "mid" / "mid.yaml", "extends: ../base.yaml\nname: mid\n")
    leaf = write(tmp_path / "leaf" / "leaf.yaml", "extends: ../mid/mid.yaml\ninner: {mode: slow}\n")
    assert load_yaml(leaf, Outer) == Outer(name="mid", flag=True, inner=Inner(mode="slow"))


def test_a_missing_base_is_one_line_naming_both_files(tmp_path):
    child = write(tmp_path / "child.yaml", "extends: nowhere.yaml\nname: c\n")
    with pytest.raises(ConfigError, match=r"child\.yaml: extends: no such config file .*nowhere\.yaml"):
        read_yaml(child)


@pytest.mark.parametrize("files, cycle", [
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, "a.yaml → b.yaml → a.yaml"),
    ({"a.yaml": "extends: a.yaml\n"}, "a.yaml → a.yaml"),
])  # fmt: skip
def test_an_extends_cycle_is_a_clear_error(tmp_path, files, cycle):
    for name, text in files.items():
        write(tmp_path / name, text)
    with pytest.raises(ConfigError, match=f"extends: the configs extend each other in a cycle \\({cycle}\\)"):
        read_yaml(tmp_path / "a.yaml")


def test_extends_must_name_a_file(tmp_path):
    with pytest.raises(ConfigError, match=r"extends: expected a file name, got \['b\.yaml'\]"):
        read_yaml(write(tmp_path / "a.yaml", "extends: [b.yaml]\n"))


def test_the_built_in_world_is_v4_with_public_logs_at_the_seeds_volume():
    assert "extends: world_v4.yaml" in (CONFIG_DIR / "world.yaml").read_text()
    world, v4 = load_world_config(CONFIG_DIR / "world.yaml"), load_world_config(CONFIG_DIR / "world_v4.yaml")
    assert world == v4 and _digest(world) == _digest(v4)  # the same world folder
    logging = logging_config(CONFIG_DIR / "world.yaml")
    assert not any(reads_hidden_truth(arm) for arm in logging.arms)
    seed_scale = load_yaml(CONFIG_DIR / "logging_seed_scale.yaml", LoggingConfig)
    assert logging == seed_scale  # the same run as configs/logging_seed_scale.yaml, so the same logs
    assert any(reads_hidden_truth(arm) for arm in logging_config(CONFIG_DIR / "world_v3.yaml").arms)


# --------------------------------------------------------------------------- JSON lines


def test_parse_object_names_the_place_and_the_field():
    assert parse_object('{"a": 1, "b": 2}', "f:1", ("a",), ValueError) == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="f:2: missing required field 'b'"):
        parse_object('{"a": 1}', "f:2", ("a", "b"), ValueError)
    with pytest.raises(ValueError, match="f:3: expected a JSON object, got list"):
        parse_object("[1]", "f:3", (), ValueError)
    with pytest.raises(ValueError, match="f:4: invalid JSON"):
        parse_object("{", "f:4", (), ValueError)
