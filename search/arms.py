"""What each arm of the recommender service serves, and the catalog it serves from.

An arm is named on the command line by one of:

* a search experiment folder (``search.run`` output): its best finished trial by the run's
  objective, or ``--trial ID``, served from the trial's checkpoint;
* a ``search.export`` folder: ``config.yaml`` beside ``recommendations.json`` (and
  ``item_recommendations.json`` when the trial serves i2i);
* a policy spec of ``python -m sim_bridge`` (``sticky_artist``, ``random``, ``toppop``,
  ``indexed:RECS.json``, ``i2i:ITEM_RECS.json:LIKE:SKIP``, ...).

A trial is served exactly as it was searched: its lists and its ``serving`` settings go through
:func:`sim_bridge.policies.serving_policy`, the factory the search's own A/B tests use. The driver
resolves arms (:func:`resolve_arm`, cheap, with one-line errors); each service replica builds its
policies from them (:func:`build_policy`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.config import load_experiment_config
from sim_bridge.contract.catalog import Catalog
from sim_bridge.policies import Policy, make_policy, policy_spec, serving_policy
from sim_bridge.contract.recs import read_item_recs, read_user_recs

from search import artifacts
from search.errors import SearchError

USER_RECS_JSON = "recommendations.json"
ITEM_RECS_JSON = "item_recommendations.json"


class ArmError(SearchError, ValueError):
    """An arm cannot be served; the message names the argument or file and what was expected."""


@dataclass(frozen=True)
class Arm:
    """One arm: a sim_bridge policy ``spec``, or a ``folder`` holding a trial's config and lists."""

    label: str  # shown by GET / and in tables, e.g. "i2i(like ≥ 0.50, skip 1) of trial 1a2b"
    spec: str | None = None
    folder: str | None = None
    world: str | None = None  # the world the trial was searched in, when recorded


@dataclass(frozen=True)
class _CatalogOnly:
    """What a served policy may see of the world: the public catalog (no hidden truth)."""

    catalog: Catalog


def resolve_arm(text: str, trial: str | None = None) -> Arm:
    """An :class:`Arm` from a folder or a policy spec (see the module docstring)."""
    path = Path(text)
    if path.is_dir():
        if (path / artifacts.CONFIG_FILE).is_file() and (path / USER_RECS_JSON).is_file():
            if trial is not None:
                raise ArmError(f"--trial {trial}: {path} is an exported trial, not a search experiment")
            return Arm(f"{_serving_label(path)} from {path}", folder=str(path.resolve()))
        return _experiment_arm(path.resolve(), trial)
    if text.partition(":")[0] == "oracle":
        raise ArmError("the oracle reads the simulator's hidden truth and cannot be served")
    if ":" not in text and ("/" in text or text.startswith(".")):
        raise ArmError(f"{text}: no such folder (expected a search experiment, an export folder or a policy)")
    return Arm(text, spec=text)


def build_policy(arm: Arm, catalog: Catalog) -> Policy:
    """The arm's policy over ``catalog`` (raises ValueError naming the file on bad input)."""
    if arm.spec is not None:
        return make_policy(arm.spec, _CatalogOnly(catalog))
    folder = Path(arm.folder)
    cfg = load_experiment_config(folder / artifacts.CONFIG_FILE)
    return serving_policy(cfg.serving, catalog, *_lists(folder, cfg.serving.policy))


def _lists(folder: Path, policy: str) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray] | None]:
    """Per-user and per-track lists from a trial checkpoint (.npz) or an export (.json)."""
    exported = not (folder / artifacts.RECS_FILE).is_file()
    if policy == "i2i":  # serves per-track lists only
        item_recs = read_item_recs(folder / ITEM_RECS_JSON) if exported else artifacts.load_item_recs(folder)
        return {}, item_recs
    return (read_user_recs(folder / USER_RECS_JSON) if exported else artifacts.load_recs(folder)), None


def _serving_label(folder: Path) -> str:
    return policy_spec(load_experiment_config(folder / artifacts.CONFIG_FILE).serving)


def _experiment_arm(exp_dir: Path, trial: str | None) -> Arm:
    """The best finished trial of a search experiment (or ``trial``), served from its checkpoint."""
    row = _pick_trial(exp_dir, trial)
    ckpt = row["checkpoint"]
    if not isinstance(ckpt, str) or not (Path(ckpt) / artifacts.RECS_FILE).is_file():
        raise ArmError(f"trial {row['trial_id']} of {exp_dir} has no checkpoint with {artifacts.RECS_FILE} "
                       f"(status {row['status']})")
    world = _recorded_world(exp_dir)
    label = f"{_serving_label(Path(ckpt))} of trial {row['trial_id']}"
    return Arm(label, folder=ckpt, world=world)


def _pick_trial(exp_dir: Path, trial: str | None):
    from search import results  # imports Ray Tune: only the driver resolves experiments
    from search.searcher import objective

    try:
        frame = results.load_trials(exp_dir)
        settings = results.read_run_file(exp_dir)
    except SearchError as exc:
        raise ArmError(f"{exc}; expected a search experiment or an export folder "
                       f"({artifacts.CONFIG_FILE} + {USER_RECS_JSON})") from None
    if trial is not None:
        rows = frame[frame["trial_id"] == trial]
        if rows.empty:
            raise ArmError(f"--trial: no trial {trial!r} in {exp_dir} (known: {', '.join(frame['trial_id'])})")
        return rows.iloc[0]
    best = results.ranked(frame, objective(settings.get("objective", "score")))
    if best.empty:
        raise ArmError(f"{exp_dir}: no finished trial to serve")
    return best.iloc[0]


def _recorded_world(exp_dir: Path) -> str | None:
    """The world the search ran on: ``smoke``, an absolute folder that still exists, or None."""
    from search import results

    settings = results.read_run_file(exp_dir)
    if settings.get("smoke_test"):
        return "smoke"
    try:
        world = results.stored_path(settings, "world", exp_dir, hint=", or pass --world")
    except SearchError as exc:
        raise ArmError(str(exc)) from None
    return str(world) if world is not None else None


def resolve_world(arms: list[Arm], override: Path | None) -> tuple[Path, str]:
    """The world folder whose ``tracks.json`` the service serves from, and where that choice came from.

    ``--world`` wins; else the world the arms' search recorded (arms from different worlds are
    refused); else the built-in default world.
    """
    from sim_bridge import defaults

    recorded = {a.world for a in arms if a.world is not None}
    if override is not None:
        return override, "--world"
    if len(recorded) > 1:
        raise ArmError(f"the arms were searched in different worlds ({', '.join(sorted(recorded))}); "
                       "pass --world")
    if recorded:
        world = recorded.pop()
        if world == "smoke":
            return Path(defaults.ensure_smoke_world()), "the search's (smoke) world"
        if not Path(world).is_dir():
            raise ArmError(f"the search's world {world} is gone; pass --world")
        return Path(world), "the search's world"
    return Path(defaults.ensure_default_world()), "the built-in world (pass --world for another)"
