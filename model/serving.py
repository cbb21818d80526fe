"""How a trained model's output is served to listeners (a searchable choice).

* ``indexed``: uniform from the user's top-``k`` list (botify's Indexed — how the seed served);
* ``sequential``: the user's list in order (botify's Sequential);
* ``i2i``: session-aware — per-track lists of the nearest items by the DSSM's item embeddings,
  served from the session's last liked track, skipping played tracks and the artists just
  played (``sim_bridge.session_aware.ItemToItem``; botify's item-to-item file format). This
  rule is this project's own: botify has no such recommender;
* ``contextual``: the same per-track lists served by botify 2025's Contextual rule (uniform
  from the previous track's list);
* ``botify_i2i``: the same per-track lists served by botify 2026's I2I rule (anchor drawn from
  the recent listens by listened time, first unheard entry) — both in ``sim_bridge.botify_rules``.

Pure data: the policies themselves live in ``sim_bridge``; ``search`` puts the two together.
"""
from __future__ import annotations

from dataclasses import dataclass

from sim_bridge.configio import ConfigError

SERVING_POLICIES = ("indexed", "sequential", "i2i", "contextual", "botify_i2i")
ITEM_LIST_POLICIES = ("i2i", "contextual", "botify_i2i")  # served from per-track lists


@dataclass
class ServingConfig:
    policy: str = "indexed"
    k: int = 100  # list length: per user (indexed/sequential) or per track (i2i)
    like_threshold: float = 0.5  # i2i: a track played at least this long becomes the anchor
    skip_artists: int = 1  # i2i: skip entries by the artists of the last n plays

    @property
    def needs_item_lists(self) -> bool:
        """True when the policy serves per-track (item-to-item) lists."""
        return self.policy in ITEM_LIST_POLICIES

    def __post_init__(self) -> None:
        if self.policy not in SERVING_POLICIES:
            raise ConfigError(f"serving.policy: expected one of {SERVING_POLICIES}, got {self.policy!r}")
        if self.k < 1:
            raise ConfigError(f"serving.k: must be >= 1, got {self.k}")
        if self.skip_artists < 0:
            raise ConfigError(f"serving.skip_artists: must be >= 0, got {self.skip_artists}")
