"""Shared fixtures of the search tests.

``killed_search``: THE smoke search of the test session; every test that needs a real experiment
folder reads it (trials table, best/, export, confirm, report, serve, resume, dashboard). Started
from a scratch directory with relative ``--world``/``--logs`` and ``FIRST_SAMPLES`` trials, its Ray
listeners sampled while it runs, its driver SIGKILLed right after the first trial's final result
landed, then resumed with a larger budget (``NUM_SAMPLES``) and ``--confirm``. ``tiny_trial``: a
tiny trained trial for the trial-pipeline tests — the smoke world, its logs, a DSSM trained one
epoch, a simulator and sticky_artist controls on any seed."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from model.config import load_experiment_config
from model.features import build_training_data
from model.train import train
from sim_bridge import defaults
from sim_bridge.contract.files import with_overrides
from sim_bridge.contract.logs import read_logs
from sim_bridge.policies import StickyArtist
from sim_bridge.simulator import Simulator
from sim_bridge.world import load_world

REPO = Path(__file__).resolve().parents[2]
FIRST_SAMPLES = 2  # before the kill
NUM_SAMPLES = 3  # after the resume: --num-samples raised the budget


@dataclass
class KilledSearch:
    """What the fixture saw: the experiment, the world copy, and the state at the kill."""

    exp: Path
    world: Path
    final_at_kill: dict[str, list[str]]  # trial folder name → its result.json lines at the kill
    listeners: dict[tuple[int, str], str] = field(default_factory=dict)  # (pid, process) → local address
    resume: subprocess.CompletedProcess | None = None
    first_log: str = ""  # the killed driver's output


def descendants(pid: int) -> dict[int, str]:
    """pid → command name of every live descendant of ``pid`` (from /proc)."""
    parent_of, names = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        parent_of[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
        names[int(entry.name)] = name
    out, frontier = {}, {pid}
    while frontier:
        frontier = {child for child, parent in parent_of.items() if parent in frontier and child not in out}
        out.update({child: names[child] for child in frontier})
    return out


def _hex_address(text: str) -> str:
    """``0100007F:1F90`` (/proc/net/tcp) or its 32-hex-digit IPv6 form → ``127.0.0.1`` / ``::ffff:...``."""
    import ipaddress

    host = text.split(":")[0]
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))  # four little-endian 32-bit words
    return str(ipaddress.IPv6Address(words))


def listening_sockets(pids: dict[int, str]) -> dict[tuple[int, str], str]:
    """(pid, name) → local address of each TCP socket in LISTEN state those processes hold."""
    listen = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A":  # TCP_LISTEN
                listen[cols[9]] = f"{_hex_address(cols[1])}:{int(cols[1].split(':')[1], 16)}"
    out = {}
    for pid, name in pids.items():
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        for link in links:
            inode = link[len("socket:["):-1] if link.startswith("socket:[") else None
            if inode in listen:
                out[(pid, f"{name}:{listen[inode]}")] = listen[inode]
    return out


def _finals(exp: Path) -> dict[str, list[str]]:
    """Trial folder → result.json lines, for trials whose result.json holds a final result."""
    out = {}
    for result in exp.glob("*/result.json"):
        lines = result.read_text().splitlines()
        if any('"final": true' in x for x in lines):
            out[result.parent.name] = lines
    return out


def _kill_after_first_final(proc: subprocess.Popen, exp: Path, seen: KilledSearch, timeout: float) -> None:
    """Sample the listeners until a trial's final result is on disk, then SIGKILL the driver."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        seen.listeners.update(listening_sockets(descendants(proc.pid)))
        finals = _finals(exp)
        if finals:
            procs = descendants(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            seen.final_at_kill = finals
            time.sleep(3)  # Ray's processes notice their driver is gone; end any that did not
            for pid in procs:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return
        time.sleep(0.2)
    procs = descendants(proc.pid)
    proc.kill()
    for pid in procs:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    raise AssertionError(f"no final result within {timeout}s (rc {proc.poll()}); see first.log")


@pytest.fixture(scope="session")
def killed_search(tmp_path_factory) -> KilledSearch:
    root = tmp_path_factory.mktemp("killed")
    world = root / "relw"
    shutil.copytree(defaults.ensure_smoke_world(), world, ignore=shutil.ignore_patterns("logs-*"))
    shutil.copyfile(defaults.ensure_smoke_logs(), world / "logs.parquet")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "search.run", "--smoke-test", "--num-samples", str(FIRST_SAMPLES), "--seed", "1",
           "--world", "relw", "--logs", "relw/logs.parquet", "--storage-path", "runs", "--name", "k"]
    with open(root / "first.log", "w") as log:  # a file, not a pipe nobody reads while it runs
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        seen = KilledSearch(exp=root / "runs" / "k", world=world, final_at_kill={})
        _kill_after_first_final(proc, seen.exp, seen, timeout=600)
    seen.first_log = (root / "first.log").read_text()
    seen.resume = subprocess.run([sys.executable, "-m", "search.run", "--resume", "--storage-path", "runs",
                                  "--name", "k", "--num-samples", str(NUM_SAMPLES), "--confirm"],
                                 cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert seen.resume.returncode == 0, seen.resume.stdout[-3000:] + seen.resume.stderr[-3000:]
    return seen


TINY = {"model.hidden_dim": 16, "model.embedding_dim": 16, "train.max_epochs": 1, "train.num_threads": 1,
        "features.min_positives": 2}


@dataclass
class TinyTrial:
    cfg: object
    events: object
    data: object
    model: object
    simulator: Simulator

    def control(self, sessions: int, seed: int):
        return self.simulator.run(StickyArtist(self.simulator.world.catalog), sessions, seed).sessions


@pytest.fixture(scope="session")
def tiny_trial() -> TinyTrial:
    world = load_world(defaults.ensure_smoke_world())
    events = read_logs(defaults.ensure_smoke_logs())
    cfg = with_overrides(load_experiment_config(defaults.CONFIG_DIR / "train.yaml"), TINY)
    data = build_training_data(events, world.catalog, cfg.features)
    model = train(cfg, data, device="cpu").model
    return TinyTrial(cfg, events, data, model, Simulator(world))


@dataclass
class Ran:
    """What a command's ``main`` returned and printed (as ``subprocess.CompletedProcess`` names them)."""

    returncode: int
    stdout: str
    stderr: str


def run_main(module: str, *args: str) -> Ran:
    """``python -m MODULE ARGS`` in this process (no interpreter start-up and imports per call): its
    exit code and what it printed. For the Ray-free commands (export, confirm, report, seed_table)."""
    import importlib
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = importlib.import_module(module).main(list(args))
    return Ran(code, out.getvalue(), err.getvalue())
