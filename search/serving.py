"""A trial's recommendations as a sim_bridge policy, the way its ``serving`` config says.

The model side exports lists (``model.infer``); the policies live in ``sim_bridge``. This is
where the two meet, for the paired objective, for ``search.confirm`` and for exports.
"""
from __future__ import annotations

import numpy as np

from model.serving import ServingConfig
from sim_bridge.botify_rules import BotifyI2I, Contextual
from sim_bridge.catalog import Catalog
from sim_bridge.policies import Indexed, Policy, Sequential
from sim_bridge.session_aware import ItemToItem


def serving_policy(cfg: ServingConfig, catalog: Catalog, user_recs: dict[int, np.ndarray],
                   item_recs: dict[int, np.ndarray] | None = None) -> Policy:
    """indexed / sequential over per-user lists; i2i (ours), contextual or botify_i2i (botify's
    rules) over per-track lists."""
    if cfg.policy == "indexed":
        return Indexed(user_recs, catalog.n_tracks)
    if cfg.policy == "sequential":
        return Sequential(user_recs, catalog.n_tracks)
    if item_recs is None:
        raise ValueError(f"serving.policy '{cfg.policy}' needs per-track lists (item_recommendations)")
    if cfg.policy == "contextual":
        return Contextual(item_recs, catalog.n_tracks)
    if cfg.policy == "botify_i2i":
        return BotifyI2I(item_recs, catalog.n_tracks)
    return ItemToItem(item_recs, catalog, cfg.like_threshold, cfg.skip_artists)


def policy_spec(cfg: ServingConfig) -> str:
    """A short label of the serving choice for tables: ``indexed``, ``i2i(0.5, skip 1)``."""
    if cfg.policy == "i2i":
        return f"i2i(like ≥ {cfg.like_threshold:.2f}, skip {cfg.skip_artists})"
    return cfg.policy
