"""What each round of the feedback loop (:mod:`search.loop`) adds to its logs: a simulated logging
A/B with the round's winner among the arms, or the logs a deployed winner wrote
(``search.serve --log-dir``), and the accumulated logs file they are appended to."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from sim_bridge import defaults
from sim_bridge.contract import columns as C
from sim_bridge.contract.logs import read_logs, write_logs

from search.errors import SearchError

DAY_MS = 86_400_000
LOG_SUFFIXES = (".json", ".jsonl", ".parquet")  # what sim_bridge.contract.logs.read_logs reads in a folder


class ServiceLogsError(SearchError):
    """A ``--logs-from`` folder that is missing, empty or malformed; the message names it."""


def round_logging(base: defaults.LoggingConfig, baselines: list[str], winner_arms: int, spec: str,
                  r: int, sessions: int | None = None) -> defaults.LoggingConfig:
    """Round r's logging A/B: ``baselines`` then ``winner_arms`` arms serving ``spec``, under the
    experiment ``<base experiment>-round-<r>``, with ``sessions`` (default ``base``'s) and seed
    ``base.seed + r``."""
    return defaults.LoggingConfig(experiment=f"{base.experiment}-round-{r}", arms=[*baselines] + [spec] * winner_arms,
                                  sessions=sessions or base.sessions, seed=base.seed + r)


def simulate_round(world, cfg: defaults.LoggingConfig, out: Path) -> pd.DataFrame:
    """Simulate ``cfg`` on ``world`` into ``out`` (each distinct spec built once); returns the events."""
    from sim_bridge.policy_specs import make_policy

    built = {spec: make_policy(spec, world) for spec in dict.fromkeys(cfg.arms)}
    return defaults.simulate_logs_of(world, cfg, out, [built[spec] for spec in cfg.arms])


def service_log_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not p.name.startswith(".") and p.suffix in LOG_SUFFIXES)


def read_service_logs(folder: Path, n_tracks: int | None) -> tuple[pd.DataFrame, str]:
    """A ``search.serve --log-dir`` folder's events (``REPLICA/data.json`` files) and a digest of
    its files; a problem is a one-line error naming the folder, or the file, line and field. With
    ``n_tracks``, every track and recommendation must be in the catalog."""
    if not folder.is_dir():
        raise ServiceLogsError(f"--logs-from: {folder}: no such folder")
    files, digest, frames = service_log_files(folder), hashlib.sha256(), []
    if not files:
        raise ServiceLogsError(f"--logs-from: {folder}: no log files (REPLICA/data.json, as search.serve "
                               "--log-dir writes them)")
    for path in files:
        events = read_logs(path)  # LogFormatError: the file, the line and the field
        for col in (C.TRACK, C.RECOMMENDATION) if n_tracks is not None else ():
            ids = events[col].dropna().to_numpy(dtype="int64")
            bad = ids[(ids < 0) | (ids >= n_tracks)]
            if len(bad):
                raise ServiceLogsError(f"--logs-from: {path}: field '{col}' holds {bad[0]}, outside the world's "
                                       f"catalog 0..{n_tracks - 1}")
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
        frames.append(events)
    events = pd.concat(frames, ignore_index=True)
    if events.empty:
        raise ServiceLogsError(f"--logs-from: {folder}: its log files hold no events")
    return events, digest.hexdigest()


def read_round_logs(folder: Path, r: int, best: Path, world_dir: Path,
                    earlier: dict[int, dict]) -> tuple[pd.DataFrame, str]:
    """Round r's service logs (``read_service_logs``, tracks checked against ``world_dir``'s
    catalog); ``earlier``: the other rounds' service records, whose logs these must not be."""
    from sim_bridge.contract.catalog import read_catalog
    from sim_bridge.world import TRACKS_JSON

    if not folder.is_dir():
        raise ServiceLogsError(f"--logs-from: {folder}: no such folder; serve round {r}'s winner with its logs "
                               f"there (python -m search.serve {best} --log-dir {folder}), send it traffic, stop "
                               "it, then rerun this command")
    events, digest = read_service_logs(folder, read_catalog(world_dir / TRACKS_JSON).n_tracks)
    for k, record in earlier.items():
        if record.get("digest") == digest:
            raise ServiceLogsError(f"--logs-from: {folder} holds the very logs round {k} appended "
                                   f"({record['folder']}); round {r} needs its own winner's")
    return events, digest


def check_logging_seeds(base: defaults.LoggingConfig, rounds: int, confirm_runs: int) -> None:
    """No round's logging run may replay the sessions of the search's evaluation, rungs or serving
    search, or of the confirmations (one seed: the same users, starts and draws)."""
    from search.config import SEARCH_FILE, load_search_config
    from search.confirm import DEFAULT_SEED

    scfg = load_search_config(SEARCH_FILE)
    taken = {scfg.eval.seed: "eval.seed", scfg.rungs.seed: "rungs.seed", scfg.serving_search.seed:
             "serving_search.seed", **{DEFAULT_SEED + i: "search.confirm's seeds" for i in range(confirm_runs)}}
    for r in range(1, rounds + 1):
        if base.seed + r in taken:
            raise SearchError(f"round {r}'s logging seed {base.seed + r} (the logging run's seed + {r}) is the "
                              f"search's {taken[base.seed + r]}: its sessions would leak into the training logs")


def append_logs(logs: Path, new: Path, out: Path, later: bool) -> dict:
    """``logs`` + ``new`` written atomically to ``out``; ``later``: ``new``'s timestamps are shifted to
    start a day after ``logs`` end (a simulated run starts at the simulator's epoch every time)."""
    prev, added = read_logs(logs), read_logs(new)
    shift = 0
    if later and len(prev) and len(added):
        shift = int(prev[C.TIMESTAMP].max()) + DAY_MS - int(added[C.TIMESTAMP].min())
        added[C.TIMESTAMP] += shift
    elif len(prev) and len(added) and added[C.TIMESTAMP].min() <= prev[C.TIMESTAMP].max():
        print(f"WARNING: {new}'s timestamps start before those of {logs} end: each user's events are "
              "ordered by timestamp", flush=True)
    combined = pd.concat([prev, added], ignore_index=True)
    write_logs(combined, out)
    print(f"loop: {len(prev)} + {len(added)} events → {out}", flush=True)
    return {"logs": str(out), "events": len(combined), "added": len(added), "timestamp_shift_ms": shift}


def n_events(path: Path) -> int:
    """Events in a logs file or folder (a Parquet file's row count from its footer)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return len(read_logs(path))
