"""The search's shared inputs, prepared once in the driver and put in Ray's object store.

* the world (the simulator needs its hidden truth; the model side only reads ``world.catalog``),
* the training data built from the logs — once, unless the search samples ``features.*`` keys, in
  which case the events go to the trials and each builds its own,
* the sticky_artist control's sessions on the evaluation seed, the rung seed and the serving
  search's seed, each simulated once,
* a simulator whose per-world start table is already built (about 2 s a trial saved).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from model.config import ExperimentConfig
from model.features import TrainingData, build_training_data
from sim_bridge.policies import StickyArtist
from sim_bridge.simulator import SimConfig, Simulator
from sim_bridge.world import World, load_world

from search.errors import SearchError
from sim_bridge.abtest import control_sessions


@dataclass
class SharedInputs:
    """Keyword arguments of the trainable (each goes into the object store once)."""

    world: World
    data: TrainingData | None
    events: pd.DataFrame | None
    control: pd.DataFrame
    rung_control: pd.DataFrame | None = None
    tuning_control: pd.DataFrame | None = None
    simulator: Simulator | None = None

    def as_kwargs(self) -> dict:
        return {"world": self.world, "data": self.data, "events": self.events, "control": self.control,
                "rung_control": self.rung_control, "tuning_control": self.tuning_control,
                "simulator": self.simulator}


def resolve_paths(world: str | None, logs: str | None, smoke: bool) -> tuple[Path, Path]:
    """``--world``/``--logs`` as absolute paths, or the built-in (smoke) world and its logs,
    generated and cached; a given path that does not exist is a SearchError."""
    from sim_bridge import defaults

    if world is not None and logs is None:  # the built-in logs belong to the built-in world
        raise SearchError("--world needs --logs: training logs from that world")
    for flag, path, is_ok, kind in (("--world", world, Path.is_dir, "folder"), ("--logs", logs, Path.exists, "file")):
        if path is not None and not is_ok(Path(path)):
            raise SearchError(f"{flag} {path}: no such {kind}")
    if world is None:
        world = defaults.ensure_smoke_world() if smoke else defaults.ensure_default_world()
    if logs is None:
        logs = defaults.ensure_smoke_logs() if smoke else defaults.ensure_default_logs()
    return Path(world).resolve(), Path(logs).resolve()


def prepare(world_dir: Path, logs_path: Path, base: ExperimentConfig, per_trial_data: bool,
            eval_sessions: int, eval_seed: int, rung: tuple[int, int] | None = None,
            tuning: tuple[int, int] | None = None) -> SharedInputs:
    """Load the world and logs, build shared training data, simulate the controls once.

    ``rung`` and ``tuning`` are (sessions, seed) of the rung and serving-search controls.
    """
    from sim_bridge.contract.logs import read_logs

    t0 = time.perf_counter()
    world = load_world(world_dir)
    events = read_logs(logs_path)
    data = None if per_trial_data else build_training_data(events, world.catalog, base.features)
    control = control_sessions(world, eval_sessions, eval_seed)
    simulator = Simulator(world, SimConfig())
    rung_control = simulator.run(StickyArtist(world.catalog), *rung).sessions if rung else None
    tuning_control = simulator.run(StickyArtist(world.catalog), *tuning).sessions if tuning else None
    print(f"inputs: world {world_dir} ({world.catalog.n_tracks} tracks), logs {logs_path} "
          f"({len(events)} events), control sticky_artist {eval_sessions} sessions "
          f"(mean time {control['time'].mean():.3f}) in {time.perf_counter() - t0:.1f}s", flush=True)
    return SharedInputs(world, data, events if per_trial_data else None, control, rung_control,
                        tuning_control, simulator)
