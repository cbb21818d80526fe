"""Policies by name: one factory for the CLI's specs and the search's serving configs.

:func:`serving_policy` builds a list-served policy (:mod:`sim_bridge.policies`) from a
:class:`~sim_bridge.contract.recs.ServingConfig` (the search's ``serving`` section), and
:func:`make_policy` parses the CLI's spec strings (``sticky_artist``, ``i2i:FILE:LIKE:SKIP``, ...),
handing every list-served spec to :func:`serving_policy`. Which policies read the simulator's
hidden truth is said here too (:func:`reads_hidden_truth`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sim_bridge.contract.catalog import Catalog
from sim_bridge.contract.recs import (
    ITEM_LIST_POLICIES,
    SERVING_POLICIES,
    ServingConfig,
    read_item_recs,
    read_top_tracks,
    read_user_recs,
)
from sim_bridge.policies import (
    BotifyI2I,
    Contextual,
    Indexed,
    ItemToItem,
    Oracle,
    Policy,
    Random,
    Sequential,
    StickyArtist,
    TopPop,
    hidden_item_lists,
)

__all__ = ["serving_policy", "policy_spec", "knobs_of", "needs_item_lists", "needs_user_lists", "make_policy",
           "reads_hidden_truth", "BASELINES", "POLICY_KNOBS", "HIDDEN_TRUTH_POLICIES"]


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


def serving_policy(cfg: ServingConfig, catalog: Catalog, user_recs: dict[int, np.ndarray] | None,
                   item_recs: dict[int, np.ndarray] | None = None) -> Policy:
    """The one factory of list-served policies (the search's ``serving`` config and the CLI's
    ``indexed:``/``i2i:``/... specs both come here): indexed / sequential over per-user lists;
    i2i (ours), contextual or botify_i2i (botify's rules) over per-track lists."""
    if cfg.policy in USER_LIST_POLICIES and user_recs is None:
        raise ValueError(f"serving.policy '{cfg.policy}' needs per-user lists (recommend)")
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


BASELINES = ("random", "sticky_artist", "sticky_artist_exclusive", "toppop", "toppop_catalog")
RENAMED = "contextual_catalog"  # the old name of contextual_hidden, refused with the new one
HIDDEN_TRUTH_POLICIES = ("oracle", "contextual_hidden", "i2i_hidden")  # the policies that read the simulator's hidden truth


def reads_hidden_truth(spec: str) -> bool:
    """Whether the policy of CLI spec ``spec`` reads the simulator's hidden truth."""
    return spec.partition(":")[0] in HIDDEN_TRUTH_POLICIES


def make_policy(spec: str, world) -> Policy:
    """Build a policy from its CLI spec: a name, ``toppop[:TOP_TRACKS.json]`` (logged TopPop: the
    world folder's ``top_tracks.json`` or the file given), ``toppop_catalog[:K]``,
    ``indexed:RECS.json`` / ``sequential:RECS.json`` (per-user lists), or per-track lists served
    by botify's rules (``contextual:ITEM_RECS.json``, ``botify_i2i:ITEM_RECS.json``) or by our
    session-aware rule ``i2i:ITEM_RECS.json[:LIKE:SKIP]`` (like_threshold LIKE and skip_artists
    SKIP; default 0.5 and 1). Three read the hidden truth: ``oracle``, ``contextual_hidden[:K]``
    (botify's Contextual over the K nearest tracks by the hidden embeddings; its old name
    ``contextual_catalog`` is refused with a line naming the new one) and ``i2i_hidden[:K[:LIKE:SKIP]]``
    (our i2i rule over those lists, K 200 by default: the ceiling of a list model served that way)."""
    catalog = world.catalog
    name, _, arg = spec.partition(":")
    if name == "random" and not arg:
        return Random(catalog.n_tracks)
    if name == "sticky_artist" and not arg:
        return StickyArtist(catalog)
    if name == "sticky_artist_exclusive" and not arg:
        return StickyArtist(catalog, exclude_previous=True)
    if name == "toppop":
        return TopPop(catalog, top=_logged_top(arg, world))
    if name == "toppop_catalog":
        return TopPop(catalog, _positive_int(arg, spec, name) if arg else 100)
    if name in SERVING_POLICIES and arg:
        return _served_from_file(name, arg, catalog)
    if name == "oracle" and not arg:
        return Oracle(world)
    if name == "contextual_hidden":
        return Contextual(hidden_item_lists(world, _positive_int(arg, spec, name) if arg else 20), catalog.n_tracks)
    if name == "i2i_hidden":
        size, knobs = _i2i_arg(arg or "200")
        lists = hidden_item_lists(world, _positive_int(size, spec, name))
        return serving_policy(ServingConfig("i2i", **knobs), catalog, None, lists)
    if name == RENAMED:
        raise ValueError(f"policy '{spec}': '{RENAMED}' is now 'contextual_hidden' (its lists read the simulator's "
                         f"hidden embeddings): use contextual_hidden{':' + arg if arg else ''}")
    raise ValueError(
        f"unknown policy '{spec}': expected one of {', '.join(BASELINES)}, oracle, contextual_hidden[:K], "
        "i2i_hidden[:K[:LIKE:SKIP]], "
        "indexed:RECS.json, sequential:RECS.json, contextual:ITEM_RECS.json, botify_i2i:ITEM_RECS.json, "
        "i2i:ITEM_RECS.json[:LIKE:SKIP]"
    )


def _served_from_file(name: str, arg: str, catalog: Catalog) -> Policy:
    """``indexed:RECS.json``, ``i2i:ITEM_RECS.json[:LIKE:SKIP]``, ...: a serving config over a list file."""
    if name in USER_LIST_POLICIES:
        return serving_policy(ServingConfig(name), catalog, read_user_recs(Path(arg)))
    path, knobs = _i2i_arg(arg) if name == "i2i" else (arg, {})
    return serving_policy(ServingConfig(name, **knobs), catalog, None, read_item_recs(Path(path)))


def _positive_int(text: str, spec: str, name: str) -> int:
    """``N`` of ``NAME:N``: a positive integer, else a ValueError naming the spec."""
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"policy '{spec}': expected {name} or {name}:N with N a positive integer, got {text!r}")
    return int(text)


def _logged_top(arg: str, world) -> np.ndarray:
    """``toppop``'s tracks: the file given, else the world's ``top_tracks.json``."""
    if arg:
        top = read_top_tracks(Path(arg))
    elif getattr(world, "top_tracks", None) is not None:
        top = world.top_tracks
    else:
        raise ValueError("policy 'toppop' serves logged top tracks, but this world folder has no top_tracks.json: "
                         "use toppop:TOP_TRACKS.json or toppop_catalog (the catalog's pop)")
    if top.max() >= world.catalog.n_tracks:
        raise ValueError(f"policy 'toppop': top tracks name tracks outside the catalog 0..{world.catalog.n_tracks - 1}")
    return top


def _i2i_arg(arg: str) -> tuple[str, dict]:
    """``FILE`` or ``FILE:LIKE:SKIP`` → (file, ItemToItem keyword arguments)."""
    if arg.count(":") < 2:
        return arg, {}
    path, like, skip = arg.rsplit(":", 2)
    try:
        serving = {"like_threshold": float(like), "skip_artists": int(skip)}
    except ValueError:
        raise ValueError(f"policy 'i2i:{arg}': expected i2i:FILE:LIKE:SKIP with LIKE a number and SKIP "
                         f"an integer, got LIKE={like!r} SKIP={skip!r}") from None
    if serving["skip_artists"] < 0:
        raise ValueError(f"policy 'i2i:{arg}': SKIP must be >= 0, got {serving['skip_artists']}")
    return path, serving
