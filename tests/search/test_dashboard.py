"""Optuna's dashboard on a live search: the study is in the experiment folder's journal file, and
``optuna-dashboard`` (bound to 127.0.0.1) shows it in a headless Chromium while the search runs."""
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


def test_optuna_dashboard_shows_the_live_study(tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is needed (apt-get install -y chromium)"
    storage = tmp_path / "runs"
    search = subprocess.Popen([sys.executable, "-m", "search.run", "--smoke-test", "--num-samples", "2",
                               "--storage-path", str(storage), "--name", "live-study", "--seed", "3"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    journal = storage / "live-study" / "optuna.journal"
    port = free_port()
    dashboard = None
    try:
        wait_for(lambda: journal.is_file() and journal.stat().st_size > 0 or search.poll() is not None,
                 240, "the study's journal file")
        assert journal.is_file(), "the search ended without writing optuna.journal"
        dashboard = subprocess.Popen([str(Path(sys.executable).parent / "optuna-dashboard"), "--storage-class",
                                      "JournalFileStorage", str(journal), "--host", "127.0.0.1", "--port", str(port),
                                      "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        studies = wait_for(lambda: get_json(f"http://127.0.0.1:{port}/api/studies"), 60, "the dashboard's API")
        assert "live-study" in [s["study_name"] for s in studies["study_summaries"]]
        page = subprocess.run([chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=20000", "--dump-dom",
                               f"http://127.0.0.1:{port}/dashboard"], capture_output=True, text=True, timeout=120)
        assert "live-study" in page.stdout, page.stdout[-2000:]
        out, _ = search.communicate(timeout=600)
        assert search.returncode == 0, out[-4000:]
        # after the search the journal holds both trials, each complete or pruned, none running
        study = optuna.load_study(study_name="live-study", storage=study_storage(journal.parent))
        states = [t.state for t in study.trials]
        assert len(states) == 2
        assert set(states) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    finally:
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(timeout=30)
        if search.poll() is None:
            search.terminate()
            search.wait(timeout=60)
