"""Simulate an A/B of baseline policies and write its botify logs (the model's training data)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sim_bridge import columns as C
from sim_bridge.experiment import simulate_experiment
from sim_bridge.logs import build_events, write_logs
from sim_bridge.policies import make_policy
from sim_bridge.simulator import SimResult, Simulator
from sim_bridge.world import load_world


def result_events(result: SimResult, experiment: str):
    """botify events of a simulation run recorded with ``record_events=True``."""
    ev = result.events
    return build_events(
        session=ev[C.SESSION].to_numpy(),
        user=ev[C.USER].to_numpy(),
        track=ev[C.TRACK].to_numpy(),
        time=ev[C.TIME].to_numpy(),
        recommendation=ev[C.RECOMMENDATION].to_numpy(),
        timestamp=ev[C.TIMESTAMP].to_numpy(),
        latency=np.zeros(len(ev)),
        arm=ev[C.ARM].to_numpy(),
        experiment=experiment,
    )


def simulate_logs(world_dir: Path, config, out: Path) -> None:
    """Run ``config`` (a LoggingConfig) on the world in ``world_dir`` and write ``out``."""
    simulate_logs_of(load_world(world_dir), config, out)


def simulate_logs_of(world, config, out: Path) -> None:
    """Run ``config`` (a LoggingConfig) on ``world`` and write its botify logs to ``out``."""
    start = time.perf_counter()
    sim = Simulator(world)
    policies = [make_policy(spec, world) for spec in config.arms]
    print(f"simulating logging run: {config.sessions} sessions, arms {config.arms} ...", flush=True)
    result = simulate_experiment(sim, policies, config.experiment, config.sessions, config.seed, record_events=True)
    events = result_events(result, config.experiment)
    write_logs(events, out)
    print(f"wrote {len(events)} events to {out} in {time.perf_counter() - start:.1f}s", flush=True)
