"""Choosing a trial's serving by simulation: its lists, scored under candidate servings.

A trial's lists are computed once at the longest candidate ``k`` (:class:`Lists`); every
candidate serving then costs one simulated run on the tuner's seed, paired with that seed's
sticky_artist control (it needs no training). :meth:`ServingTuner.search` tunes each candidate
policy by coordinate descent over the small grids of the knobs it reads, one knob at a time (in
passes, until a pass changes nothing), and
keeps the best policy at its best knobs (choosing the policy first, at one set of knobs, kept
``contextual`` over an ``i2i`` that wins by far with a higher like threshold and more artists
skipped).
The rungs (:mod:`search.rungs`) use the same tuner on their own seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from model.infer import ItemNeighbours, recommend
from sim_bridge.abtest import paired_lift
from sim_bridge.contract.files import with_overrides
from sim_bridge.contract.recs import ServingConfig
from sim_bridge.policy_specs import knobs_of, needs_item_lists, needs_user_lists, serving_policy
from sim_bridge.simulator import Simulator

from search.config import ServingSearchConfig

NAN = float("nan")


@dataclass
class Lists:
    """A model's lists at the longest candidate k; None for a kind no candidate policy needs.

    ``item``: per-track lists computed as they are read (:class:`model.infer.ItemNeighbours`), or
    a dict (lists made elsewhere); :meth:`complete` makes it a dict.
    ``k``: the length asked for (a list is shorter only when the model has fewer items; 0: not
    known, so never reused as long enough).
    """

    user: dict[int, np.ndarray] | None
    item: dict[int, np.ndarray] | ItemNeighbours | None
    k: int = 0

    def truncated(self, k: int) -> "Lists":
        cut = lambda lists: {key: v[:k] for key, v in lists.items()}  # noqa: E731
        item = self.item.truncated(k) if isinstance(self.item, ItemNeighbours) else self.item and cut(self.item)
        return Lists(None if self.user is None else cut(self.user), item, min(k, self.k))

    def compute_all(self) -> "Lists":
        """Every per-track list not computed yet, now, in one batch (faster a list than as read);
        the lists stay a table the policies serve from."""
        if isinstance(self.item, ItemNeighbours):
            self.item.compute_all()
        return self

    def complete(self) -> "Lists":
        """These lists with every per-track list computed, as a dict (what a checkpoint saves)."""
        item = self.item.to_dict() if isinstance(self.item, ItemNeighbours) else self.item
        return Lists(self.user, item, self.k)


@dataclass(frozen=True)
class Choice:
    """The serving chosen, its lift (%) on the tuning sessions, and how many servings were tried."""

    serving: ServingConfig
    lift: float
    tried: int


class ServingTuner:
    """Scores servings of one trial's lists on one seed's sessions (paired with its control)."""

    def __init__(self, cfg: ServingSearchConfig, simulator: Simulator, control: pd.DataFrame, seed: int):
        self.cfg, self.sim, self.control, self.seed = cfg, simulator, control, seed
        self.sessions = len(control)  # one row per session

    def lists(self, model, data, device: str = "cpu", min_k: int = 1, policies: list[str] | None = None,
              have: Lists | None = None) -> Lists:
        """The model's lists at the longest candidate k (at least ``min_k``), of the kinds
        ``policies`` (default: the candidate policies) need. ``have``: lists of these same weights
        already computed (a rung's), reused where they serve (see :func:`model_lists`)."""
        k = max([int(v) for v in self.cfg.knobs.get("k", [])] + [min_k])
        return model_lists(model, data, k, policies or self.cfg.policies, device, have)

    def lift(self, serving: ServingConfig, lists: Lists) -> float:
        """Paired lift (%) of ``serving`` vs sticky_artist on this tuner's sessions."""
        cut = lists.truncated(serving.k)
        policy = serving_policy(serving, self.sim.world.catalog, cut.user, cut.item)
        treatment = self.sim.run(policy, self.sessions, self.seed)
        return float(paired_lift(self.control, treatment.sessions).effect)

    def best_policy(self, lists: Lists, start: ServingConfig, policies: list[str] | None = None) -> Choice:
        """Each of ``policies`` (default: the candidates) with ``start``'s knobs; the best."""
        scored = [(self.lift(s, lists), s) for s in (replace(start, policy=p) for p in policies or self.cfg.policies)]
        lift, serving = max(scored, key=lambda t: t[0])
        return Choice(serving, lift, len(scored))

    def search(self, lists: Lists, start: ServingConfig) -> Choice:
        """Each candidate policy tuned by coordinate descent over its own knobs (one knob at a
        time, from ``start``'s values); the best of them. Policies are compared at their best
        knobs, not at ``start``'s: a rule that needs other knobs than another's still wins."""
        tried, best = 0, None
        for policy in self.cfg.policies:
            choice = self.tune(lists, replace(start, policy=policy))
            tried += choice.tried
            if best is None or choice.lift > best.lift:
                best = choice
        return Choice(best.serving, best.lift, tried)

    def tune(self, lists: Lists, start: ServingConfig, max_passes: int = 3) -> Choice:
        """Coordinate descent from ``start`` over each knob its policy reads, one at a time, in
        passes until one changes nothing (at most ``max_passes``): the best like threshold
        depends on how many artists are skipped, so one pass can stop short. A knob tries its
        whole grid, a ``stepped`` one its neighbouring values while they improve."""
        seen: dict[tuple, float] = {}

        def scored(serving: ServingConfig) -> Choice:
            if _key(serving) not in seen:
                seen[_key(serving)] = self.lift(serving, lists)
            return Choice(serving, seen[_key(serving)], 0)

        best = scored(start)
        for _ in range(max_passes):
            before = best.serving
            for knob in knobs_of(start.policy, list(self.cfg.knobs)):
                for value in self._values(knob, best.serving):
                    cand = scored(with_overrides(best.serving, {knob: value}))
                    if cand.lift > best.lift:
                        best = cand
                if knob in self.cfg.stepped:
                    best = self._step(knob, best, scored)
            if best.serving == before:
                break
        return Choice(best.serving, best.lift, len(seen))

    def _values(self, knob: str, serving: ServingConfig) -> list:
        """The values a knob tries in full: its grid; none for a stepped knob already on its grid."""
        grid = self.cfg.knobs[knob]
        return [] if knob in self.cfg.stepped and getattr(serving, knob) in grid else grid

    def _step(self, knob: str, best: Choice, scored) -> Choice:
        """From ``best``, move ``knob`` one grid value at a time, down then up, while the lift rises."""
        grid = self.cfg.knobs[knob]
        if getattr(best.serving, knob) not in grid:  # an off-grid start that no grid value beat
            return best
        for direction in (-1, 1):
            i = grid.index(getattr(best.serving, knob)) + direction
            while 0 <= i < len(grid):
                cand = scored(with_overrides(best.serving, {knob: grid[i]}))
                if cand.lift <= best.lift:
                    break
                best, i = cand, i + direction
        return best


def model_lists(model, data, k: int, policies: list[str], device: str = "cpu", have: Lists | None = None) -> Lists:
    """``model``'s top-``k`` lists: per user when a policy needs them, per track likewise, those
    computed as the simulations read them (:class:`model.infer.ItemNeighbours`: a rung's i2i
    sessions read the lists of only the tracks they anchor on; see docs/results.md for the time).

    ``have``: lists already computed from the *same weights* (the caller's promise: a trial's best
    rung, whose weights it restored). A kind in it at least ``k`` long is taken as it is (with the
    per-track lists it has computed) instead of being computed again.
    """
    reuse = have is not None and have.k >= k
    if reuse and have.k > k:
        have = have.truncated(k)
    user = item = None
    if any(needs_user_lists(p) for p in policies):
        user = have.user if reuse and have.user is not None else recommend(model, data, k=k, device=device)
    if any(needs_item_lists(p) for p in policies):
        item = have.item if reuse and have.item is not None else ItemNeighbours.of(model, data, data.n_tracks, k, device)
    return Lists(user, item, k)


def _key(serving: ServingConfig) -> tuple:
    return tuple(sorted(vars(serving).items()))


def serving_metrics(choice: Choice, prefix: str = "serving") -> dict:
    """A choice as flat report keys: ``serving/policy``, ``serving/k``, ... and its tuning lift."""
    out = {f"{prefix}/{k}": v for k, v in vars(choice.serving).items()}
    out["tuning_lift"] = choice.lift if math.isfinite(choice.lift) else NAN
    out["serving_tried"] = choice.tried
    return out
