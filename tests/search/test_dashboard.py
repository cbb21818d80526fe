"""Optuna's dashboard on a search's study: the study is in the experiment folder's journal file (the
shared smoke search of conftest.py), and ``optuna-dashboard`` (bound to 127.0.0.1) shows it in a
headless Chromium. The journal appends only, so the dashboard reads it the same way while a search runs."""
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna

from search.searcher import study_storage
from tests.search.conftest import NUM_SAMPLES

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def test_optuna_dashboard_shows_the_study(killed_search):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is needed (apt-get install -y chromium)"
    journal = killed_search.exp / "optuna.journal"
    name = killed_search.exp.name
    port = free_port()
    dashboard = subprocess.Popen([str(Path(sys.executable).parent / "optuna-dashboard"), "--storage-class",
                                  "JournalFileStorage", str(journal), "--host", "127.0.0.1", "--port", str(port),
                                  "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        studies = wait_for(lambda: get_json(f"http://127.0.0.1:{port}/api/studies"), 60, "the dashboard's API")
        assert name in [s["study_name"] for s in studies["study_summaries"]]
        page = subprocess.run([chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=20000", "--dump-dom",
                               f"http://127.0.0.1:{port}/dashboard"], capture_output=True, text=True, timeout=120)
        assert name in page.stdout, page.stdout[-2000:]
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
    # the journal holds every trial the search asked Optuna for; the finished ones are complete
    study = optuna.load_study(study_name=name, storage=study_storage(journal.parent))
    states = [t.state for t in study.trials]
    assert len(states) >= NUM_SAMPLES and optuna.trial.TrialState.COMPLETE in states
