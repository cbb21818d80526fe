"""A Ray cluster of separate node processes on this machine, for tests and benchmarks.

Each node is one ``ray start --block`` process — ``--head`` for the first, ``--address HEAD`` for
the others, as on a real cluster — with its own ``--temp-dir``, its own free ports (every port Ray
would otherwise take at a fixed default, so it never meets another Ray on this machine), its own
working directory and environment, and ``--node-ip-address 127.0.0.1``. :meth:`LocalCluster.stop`
ends only what it started: each ``ray start --block`` process (which stops its node's processes),
then any process whose command line names one of its temp dirs. Never ``ray stop``, which ends
every Ray on the machine.

:func:`bare_python` makes the Python a worker node runs on: a virtual environment that sees the
installed packages but not this project (its editable install is not loaded), so the node gets the
project only the way a job ships it (:func:`search.cluster.code_env`).
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

# Ray's multi-node switch, on: a local search run earlier in this process (search.cluster's
# loopback-only mode) leaves it off in os.environ, and a node started with it off refuses to join.
MULTI_NODE = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}

READY = "Ray runtime started"
PORT_FLAGS = ("--ray-client-server-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
              "--runtime-env-agent-port", "--metrics-export-port", "--node-manager-port", "--object-manager-port")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_python(folder: Path) -> str:
    """A Python in a new virtual environment at ``folder`` whose ``sys.path`` holds this one's
    site-packages as a plain folder: the packages import, but ``.pth`` files there (this project's
    editable install) are not run, so ``import search`` fails unless a job ships the project."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    (Path(site) / "installed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return str(python)


def processes_naming(text: str) -> list[int]:
    """Pids of this user's processes whose command line contains ``text`` (from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


@dataclass
class Node:
    """One node: its ``ray start --block`` process, temp dir and log (the process's output)."""

    name: str
    proc: subprocess.Popen
    temp_dir: Path
    log: Path

    def node_id(self) -> str | None:
        """The node's Ray id (hex), from the per-node files of its session folder."""
        for path in self.temp_dir.glob("session_*/runtime_env_agent_port_*"):
            return path.name.rsplit("_", 1)[1]
        return None

    def raylet_pid(self) -> int | None:
        """The pid of this node's raylet (its command line names the node's temp dir)."""
        for pid in processes_naming(str(self.temp_dir)):
            try:
                if (Path("/proc") / str(pid) / "comm").read_text().strip() == "raylet":
                    return pid
            except OSError:
                continue
        return None


@dataclass
class LocalCluster:
    """Nodes started under ``root`` (short: Ray's socket paths must stay under 108 bytes)."""

    root: Path
    nodes: list[Node] = field(default_factory=list)
    address: str | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(32))

    def auth_env(self) -> dict[str, str]:
        """Token authentication with this cluster's own token (never ``~/.ray/auth_token``, which
        another Ray on this machine may use): every node and every driver joining needs it."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def start_head(self, num_cpus: int = 1, env: dict | None = None, cwd: Path | None = None,
                   python: str = sys.executable) -> str:
        """Start the head node; returns its address ``127.0.0.1:PORT``."""
        port = free_port()
        self._start("head", ["--head", f"--port={port}", "--include-dashboard=false"], num_cpus, env, cwd, python)
        self.address = f"127.0.0.1:{port}"
        return self.address

    def add_worker(self, name: str = "worker", num_cpus: int = 1, env: dict | None = None,
                   cwd: Path | None = None, python: str = sys.executable) -> Node:
        """Start a worker node joining the head."""
        if self.address is None:
            raise RuntimeError("start the head first")
        return self._start(name, [f"--address={self.address}"], num_cpus, env, cwd, python)

    def _start(self, name: str, role: list[str], num_cpus: int, env: dict | None, cwd: Path | None,
               python: str) -> Node:
        temp_dir = self.root / name
        temp_dir.mkdir(parents=True, exist_ok=True)
        log = self.root / f"{name}.log"
        ports = [f"{flag}={free_port()}" for flag in PORT_FLAGS]
        command = [python, "-m", "ray.scripts.scripts", "start", "--block", *role, "--node-ip-address=127.0.0.1",
                   f"--num-cpus={num_cpus}", "--num-gpus=0", f"--temp-dir={temp_dir}", "--disable-usage-stats",
                   *ports]
        with open(log, "w") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd or self.root,
                                    env={**(env if env is not None else os.environ), **self.auth_env(),
                                         **MULTI_NODE},
                                    start_new_session=True)
        node = Node(name, proc, temp_dir, log)
        self.nodes.append(node)
        self._wait_ready(node)
        return node

    def _wait_ready(self, node: Node, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if READY in node.log.read_text(errors="replace"):
                return
            if node.proc.poll() is not None:
                raise RuntimeError(f"ray start of {node.name} exited ({node.proc.returncode}): "
                                   f"{node.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        raise TimeoutError(f"{node.name} did not start within {timeout:g}s; see {node.log}")

    def stop(self) -> None:
        """Stop every node this cluster started (workers first), then any process left that names
        one of its temp dirs."""
        for node in reversed(self.nodes):
            if node.proc.poll() is None:
                node.proc.terminate()  # `ray start --block` stops its node's processes
                try:
                    node.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(timeout=30)
        for node in self.nodes:
            for pid in processes_naming(str(node.temp_dir)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
