"""The search's shared inputs, prepared once in the driver and put in Ray's object store.

* the world (the simulator needs its hidden truth; the model side only reads ``world.catalog``),
* the training data built from the logs — once, unless the search samples ``features.*`` keys, in
  which case the events go to the trials and each builds its own,
* the sticky_artist control's sessions on the evaluation seed, simulated once.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from model.config import ExperimentConfig
from model.features import TrainingData, build_training_data
from sim_bridge.world import World, load_world

from search.evaluate import control_sessions


@dataclass
class SharedInputs:
    """Keyword arguments of the trainable (each goes into the object store once)."""

    world: World
    data: TrainingData | None
    events: pd.DataFrame | None
    control: pd.DataFrame

    def as_kwargs(self) -> dict:
        return {"world": self.world, "data": self.data, "events": self.events, "control": self.control}


def resolve_paths(world: str | None, logs: str | None, smoke: bool) -> tuple[Path, Path]:
    """``--world``/``--logs``, or the built-in (smoke) world and its logs, generated and cached."""
    from sim_bridge import defaults

    if world is not None and logs is None:  # the built-in logs belong to the built-in world
        raise SystemExit("--world needs --logs: training logs from that world, e.g. python -m sim_bridge "
                         f"simulate --world {world} --experiment logging "
                         "--arms C=random,T1=sticky_artist,T2=toppop_catalog --sessions 60000 --out logs.parquet")
    if world is None:
        world = defaults.ensure_smoke_world() if smoke else defaults.ensure_default_world()
    if logs is None:
        logs = defaults.ensure_smoke_logs() if smoke else defaults.ensure_default_logs()
    return Path(world), Path(logs)


def prepare(world_dir: Path, logs_path: Path, base: ExperimentConfig, per_trial_data: bool,
            eval_sessions: int, eval_seed: int) -> SharedInputs:
    """Load the world and logs, build shared training data, simulate the control once."""
    from sim_bridge.logs import read_logs

    t0 = time.perf_counter()
    world = load_world(world_dir)
    events = read_logs(logs_path)
    data = None if per_trial_data else build_training_data(events, world.catalog, base.features)
    control = control_sessions(world, eval_sessions, eval_seed)
    print(f"inputs: world {world_dir} ({world.catalog.n_tracks} tracks), logs {logs_path} "
          f"({len(events)} events), control sticky_artist {eval_sessions} sessions "
          f"(mean time {control['time'].mean():.3f}) in {time.perf_counter() - t0:.1f}s", flush=True)
    return SharedInputs(world, data, events if per_trial_data else None, control)
