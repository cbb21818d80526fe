"""The built-in default world and its training logs: generated once, cached on disk.

Cache root: ``$BOTIFY_TUNE_CACHE`` or ``~/.cache/botify-tune``. Each world lives in a folder
named by a digest of its generator config, so a changed config never reuses stale files;
its training logs (a simulated logging run, ``configs/logging.yaml``) sit beside it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sim_bridge.configio import load_yaml
from sim_bridge.worldgen import WorldGenConfig, generate_world

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_WORLD_CONFIG = CONFIG_DIR / "world.yaml"
SMOKE_WORLD_CONFIG = CONFIG_DIR / "smoke_world.yaml"
DEFAULT_LOGGING_CONFIG = CONFIG_DIR / "logging.yaml"


@dataclass(frozen=True)
class LoggingConfig:
    """The logging run that produces the model's training data (an A/B of baselines)."""

    experiment: str = "logging"
    arms: list[str] = field(default_factory=lambda: ["random", "sticky_artist", "toppop"])
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


def ensure_world(config: WorldGenConfig, name: str = "world") -> Path:
    """Folder of the world generated from ``config`` (generated on first use)."""
    folder = cache_root() / f"{name}-{_digest(config)}"
    if not (folder / "users.json").is_file():
        from sim_bridge.world import save_world

        print(f"generating {name} (seed {config.seed}, {config.n_tracks} tracks) into {folder} ...", flush=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        save_world(generate_world(config), tmp)
        if folder.exists():  # a concurrent run finished first: keep its copy
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
    return folder


def ensure_logs(world_dir: Path, config: LoggingConfig) -> Path:
    """Parquet training logs of ``config``'s logging run in ``world_dir`` (simulated on first use)."""
    path = Path(world_dir) / f"logs-{_digest(config)}.parquet"
    if not path.is_file():
        from sim_bridge.logging_run import simulate_logs

        simulate_logs(Path(world_dir), config, path)
    return path


def ensure_default_world() -> Path:
    return ensure_world(load_yaml(DEFAULT_WORLD_CONFIG, WorldGenConfig))


def ensure_default_logs() -> Path:
    return ensure_logs(ensure_default_world(), load_yaml(DEFAULT_LOGGING_CONFIG, LoggingConfig))


def ensure_smoke_world() -> Path:
    return ensure_world(load_yaml(SMOKE_WORLD_CONFIG, WorldGenConfig), name="smoke-world")


def ensure_smoke_logs() -> Path:
    config = LoggingConfig(experiment="smoke-logging", sessions=4_000, seed=5)
    return ensure_logs(ensure_smoke_world(), config)
