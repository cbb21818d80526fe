"""A ``python -m search.serve`` subprocess for the tests that talk to it over HTTP."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY = "Ctrl-C or SIGTERM stops it"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    """Starts the service and waits until it serves; ``stop(sig)`` → (exit code, its output)."""

    def __init__(self, args: list[str], log_dir: Path, start_timeout: float = 240.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "search.serve", *args, "--port", str(self.port), "--log-dir", str(log_dir)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(start_timeout) or self.proc.poll() is not None:
            self.proc.kill()
            raise RuntimeError("search.serve did not start:\n" + "".join(self.lines[-40:]))

    def _read(self) -> None:
        for line in self.proc.stdout:  # drain the pipe so the service never blocks on it
            self.lines.append(line)
            if READY in line:
                self.ready.set()

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, object]:
        """(status, JSON body) of one request; HTTP errors are answers too."""
        req = urllib.request.Request(self.url + path, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def logged_events(self) -> int:
        return sum(len(p.read_text().splitlines()) for p in self.log_dir.glob("*/data.json"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120.0) -> tuple[int, str]:
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        time.sleep(0.2)  # let the reader thread take the last lines
        return code, "".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
