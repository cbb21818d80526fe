"""How a trained model's output is served to listeners (a searchable choice).

* ``indexed``: uniform from the user's top-``k`` list (botify's Indexed — how the seed served);
* ``sequential``: the user's list in order (botify's Sequential);
* ``i2i``: session-aware — per-track lists of the nearest items by the DSSM's item embeddings,
  served from the session's last liked track, skipping played tracks and the artists just
  played (``sim_bridge.session_aware.ItemToItem``; botify's item-to-item file format).

Pure data: the policies themselves live in ``sim_bridge``; ``search`` puts the two together.
"""
from __future__ import annotations

from dataclasses import dataclass

from sim_bridge.configio import ConfigError

SERVING_POLICIES = ("indexed", "sequential", "i2i")


@dataclass
class ServingConfig:
    policy: str = "indexed"
    k: int = 100  # list length: per user (indexed/sequential) or per track (i2i)
    like_threshold: float = 0.5  # i2i: a track played at least this long becomes the anchor
    skip_artists: int = 1  # i2i: skip entries by the artists of the last n plays

    def __post_init__(self) -> None:
        if self.policy not in SERVING_POLICIES:
            raise ConfigError(f"serving.policy: expected one of {SERVING_POLICIES}, got {self.policy!r}")
        if self.k < 1:
            raise ConfigError(f"serving.k: must be >= 1, got {self.k}")
        if self.skip_artists < 0:
            raise ConfigError(f"serving.skip_artists: must be >= 0, got {self.skip_artists}")
