"""The built-in default world and its training logs (a simulated logging run): generated once, cached.

Cache root: ``$BOTIFY_TUNE_CACHE`` or ``~/.cache/botify-tune``. Each world lives in a folder
named by a digest of its generator config (the generator's name included, so v1 and v2 worlds
never share a folder); its training logs (a simulated logging run, ``configs/logging.yaml``) and
their ``top_tracks.json`` sit beside it.

The built-in world is ``configs/world.yaml``; ``$BOTIFY_TUNE_WORLD_CONFIG`` (what the
``--world-config`` flags set) names another world config, e.g. ``configs/world_v1.yaml``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sim_bridge.abtest import simulate_experiment
from sim_bridge.contract.files import ConfigError, from_dict, load_yaml, read_yaml
from sim_bridge.contract.logs import read_logs, write_logs
from sim_bridge.contract.recs import top_tracks_by_time, write_top_tracks
from sim_bridge.policy_specs import make_policy
from sim_bridge.simulator import Simulator, result_events
from sim_bridge.world import TOP_TRACKS_JSON as TOP_TRACKS, load_world, save_world
from sim_bridge.worldgen import build_world, load_world_config

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_WORLD_CONFIG = CONFIG_DIR / "world.yaml"
SMOKE_WORLD_CONFIG = CONFIG_DIR / "smoke_world.yaml"
DEFAULT_LOGGING_CONFIG = CONFIG_DIR / "logging.yaml"
WORLD_CONFIG_ENV = "BOTIFY_TUNE_WORLD_CONFIG"


@dataclass(frozen=True)
class LoggingConfig:
    """The logging run that produces the model's training data (an A/B of baselines)."""

    experiment: str = "logging"
    arms: list[str] = field(default_factory=lambda: ["random", "sticky_artist", "toppop_catalog"])
    sessions: int = 60_000
    seed: int = 2023

    def __post_init__(self) -> None:
        if self.sessions < 1:
            raise ValueError(f"sessions must be >= 1, got {self.sessions}")
        if not self.arms:
            raise ValueError("arms must name at least one policy")


def cache_root() -> Path:
    return Path(os.environ.get("BOTIFY_TUNE_CACHE", Path.home() / ".cache" / "botify-tune"))


def _digest(config) -> str:
    blob = json.dumps(dataclasses.asdict(config), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def world_config_path() -> Path:
    """The built-in world's config: ``$BOTIFY_TUNE_WORLD_CONFIG`` or ``configs/world.yaml``."""
    return Path(os.environ.get(WORLD_CONFIG_ENV) or DEFAULT_WORLD_CONFIG)


def use_world_config(path: str | Path | None) -> None:
    """Make ``path`` the built-in world for this process (what ``--world-config`` does)."""
    if path is not None:
        load_world_config(path)  # fail now, with the file's name, not deep inside a run
        logging_config(path)
        os.environ[WORLD_CONFIG_ENV] = str(Path(path).resolve())


def ensure_world(config, name: str = "world") -> Path:
    """Folder of the world generated from ``config`` (generated on first use)."""
    folder = cache_root() / f"{name}-{_digest(config)}"
    if not (folder / "users.json").is_file():
        print(f"generating {name} (seed {config.seed}, {config.n_tracks} tracks) into {folder} ...", flush=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        save_world(build_world(config), tmp)
        if folder.exists():  # a concurrent run finished first: keep its copy
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
    return folder


def ensure_logs(world_dir: Path, config: LoggingConfig) -> Path:
    """Parquet training logs of ``config``'s logging run in ``world_dir`` (simulated on first use)."""
    path = Path(world_dir) / f"logs-{_digest(config)}.parquet"
    if not path.is_file():
        simulate_logs(Path(world_dir), config, path)
    return path


def ensure_top_tracks(world_dir: Path, logs: Path) -> None:
    """``top_tracks.json`` in ``world_dir``: the 100 tracks with the most summed listening time
    in ``logs`` (botify's TopPop file, what the ``toppop`` policy serves)."""
    world_dir = Path(world_dir)
    stamp = world_dir / f".{TOP_TRACKS}.{logs.stem}"
    if (world_dir / TOP_TRACKS).is_file() and stamp.is_file():
        return
    write_top_tracks(top_tracks_by_time(read_logs(logs)), world_dir / TOP_TRACKS)
    for old in world_dir.glob(f".{TOP_TRACKS}.*"):
        old.unlink()
    stamp.touch()


def logging_config(world_config: str | Path) -> LoggingConfig:
    """The world's default logging run: its config's ``logging:`` section, else ``configs/logging.yaml``."""
    section = read_yaml(world_config).get("logging")
    if section is None:
        return load_yaml(DEFAULT_LOGGING_CONFIG, LoggingConfig)
    try:
        return from_dict(LoggingConfig, section, prefix="logging")
    except ConfigError as exc:
        raise ConfigError(f"{world_config}: {exc}") from None


def ensure_default_world() -> Path:
    """The built-in world's folder, with its default logs and ``top_tracks.json``."""
    world_dir = ensure_world(load_world_config(world_config_path()))
    ensure_top_tracks(world_dir, ensure_logs(world_dir, logging_config(world_config_path())))
    return world_dir


def ensure_default_logs() -> Path:
    return ensure_logs(ensure_default_world(), logging_config(world_config_path()))


def ensure_smoke_world() -> Path:
    return ensure_world(load_world_config(SMOKE_WORLD_CONFIG), name="smoke-world")


SMOKE_LOGGING = LoggingConfig(experiment="smoke-logging", sessions=4_000, seed=5)  # the smoke world's logging run


def ensure_smoke_logs() -> Path:
    return ensure_logs(ensure_smoke_world(), SMOKE_LOGGING)


# --------------------------------------------------------------------------- the logging run
# An A/B of baseline policies whose botify logs are the model's training data.


def simulate_logs(world_dir: Path, config, out: Path) -> None:
    """Run ``config`` (a LoggingConfig) on the world in ``world_dir`` and write ``out``."""
    simulate_logs_of(load_world(world_dir), config, out)


def simulate_logs_of(world, config, out: Path, policies=None):
    """Run ``config`` (a LoggingConfig) on ``world``, write its botify logs to ``out`` and return
    them (events). ``policies``: its arms already built (default: built here from ``config.arms``)."""
    start = time.perf_counter()
    sim = Simulator(world)
    policies = policies or [make_policy(spec, world) for spec in config.arms]
    print(f"simulating logging run: {config.sessions} sessions, arms {config.arms} ...", flush=True)
    result = simulate_experiment(sim, policies, config.experiment, config.sessions, config.seed, record_events=True)
    events = result_events(result, config.experiment)
    write_logs(events, out)
    print(f"wrote {len(events)} events to {out} in {time.perf_counter() - start:.1f}s", flush=True)
    return events
