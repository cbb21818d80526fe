"""World generators v1, v2 and v3, seeded, all writing the course's world format
(:mod:`sim_bridge.world`): a world config file names its generator (``generator: v1 | v2 | v3``)
and this module loads it into that generator's dataclass and builds its world.

* **v1** (:mod:`sim_bridge.worldgen_v1`): the first world, calibrated to the course's three
  baselines; genres → artists → tracks, embeddings along one popularity direction.
* **v2** (:mod:`sim_bridge.worldgen_v2`): a world shaped like the course's own files (its known
  statistics), with latent taste clusters and a public genre label derived from them.
* **v3** (:mod:`sim_bridge.worldgen_v2`): v2's hidden truth with a public catalog in the
  course's exact schema (:mod:`sim_bridge.course_catalog`).
"""
from __future__ import annotations

from pathlib import Path

from sim_bridge.contract.files import ConfigError, from_dict, read_yaml
from sim_bridge.world import World
from sim_bridge.worldgen_v1 import WorldGenConfig, generate_world
from sim_bridge.worldgen_v2 import WorldGenV2Config, WorldGenV3Config, generate_world_v2, generate_world_v3

GENERATORS = ("v1", "v2", "v3")
_CONFIGS = {"v1": WorldGenConfig, "v2": WorldGenV2Config, "v3": WorldGenV3Config}


def load_world_config(path: str | Path):
    """A world config file → its generator's dataclass (``generator: v1 | v2 | v3``; v1 if absent).

    An optional ``logging:`` section (the world's default logging run) is not the generator's:
    ``sim_bridge.defaults`` reads it."""
    data = {k: v for k, v in read_yaml(path).items() if k != "logging"}
    generator = data.get("generator", "v1")
    if generator not in GENERATORS:
        raise ConfigError(f"{path}: generator: expected one of {', '.join(GENERATORS)}, got {generator!r}")
    cls = _CONFIGS[generator]
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def build_world(cfg) -> World:
    """Generate the world of a v1, v2 or v3 config."""
    if isinstance(cfg, WorldGenV3Config):
        return generate_world_v3(cfg)
    return generate_world_v2(cfg) if isinstance(cfg, WorldGenV2Config) else generate_world(cfg)
