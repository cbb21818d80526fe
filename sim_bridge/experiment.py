"""Simulated A/B experiments: botify assigns each user an arm, each arm serves its policy."""
from __future__ import annotations

from typing import Mapping

from sim_bridge.assignment import arm_index, arm_names
from sim_bridge.policies import Policy
from sim_bridge.simulator import SimResult, Simulator


def simulate_experiment(
    sim: Simulator,
    policies: list[Policy],
    experiment: str,
    n_sessions: int,
    seed: int,
    record_events: bool = False,
) -> SimResult:
    """Run ``policies`` as arms C, T1, ... of ``experiment`` (botify's user assignment)."""
    if not policies:
        raise ValueError("an experiment needs at least one arm")
    plan = sim.plan(n_sessions, seed)
    users = sim.world.users.user[plan.user_index]
    arms: Mapping[str, Policy] = dict(zip(arm_names(len(policies)), policies))
    return sim.run(arms, n_sessions, seed, arm_of_session=arm_index(users, experiment, len(policies)),
                   record_events=record_events)
