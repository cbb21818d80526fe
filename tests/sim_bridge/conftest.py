import pytest

from sim_bridge.contract.files import load_yaml
from sim_bridge.defaults import SMOKE_WORLD_CONFIG
from sim_bridge.worldgen_v1 import WorldGenConfig, generate_world


@pytest.fixture(scope="session")
def smoke_world():
    """The tiny generated world of configs/smoke_world.yaml (2,000 tracks, 500 users)."""
    return generate_world(load_yaml(SMOKE_WORLD_CONFIG, WorldGenConfig))
