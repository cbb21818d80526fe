"""A trial's recommendations as a sim_bridge policy, the way its ``serving`` config says.

The model side exports lists (``model.infer``); the policies live in ``sim_bridge``. This is
where the two meet, for the paired objective, for ``search.confirm`` and for exports.
"""
from __future__ import annotations

import numpy as np

from model.serving import ITEM_LIST_POLICIES, ServingConfig
from sim_bridge.botify_rules import BotifyI2I, Contextual
from sim_bridge.catalog import Catalog
from sim_bridge.policies import Indexed, Policy, Sequential
from sim_bridge.session_aware import ItemToItem

# The ``serving.*`` knobs each policy reads (the in-trial serving search tries only these). A policy
# missing here is tried with every knob, and with both kinds of lists: correct, only slower.
POLICY_KNOBS = {
    "indexed": ("k",),
    "sequential": ("k",),
    "i2i": ("k", "like_threshold", "skip_artists"),
    "contextual": ("k",),
    "botify_i2i": ("k",),
}
USER_LIST_POLICIES = ("indexed", "sequential")  # served from per-user lists only


def knobs_of(policy: str, knobs: list[str]) -> list[str]:
    """The knobs among ``knobs`` that ``policy`` reads (all of them for a policy not in the table)."""
    own = POLICY_KNOBS.get(policy)
    return [k for k in knobs if own is None or k in own]


def needs_item_lists(policy: str) -> bool:
    """Whether serving ``policy`` needs per-track lists (``model.infer.item_recommendations``)."""
    return policy not in USER_LIST_POLICIES


def needs_user_lists(policy: str) -> bool:
    """Whether serving ``policy`` needs per-user lists (``model.infer.recommend``)."""
    return policy not in ITEM_LIST_POLICIES


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
