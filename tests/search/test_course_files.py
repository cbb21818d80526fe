"""End to end on a folder shaped exactly like the course's: its tracks.json written line by line in
the course's schema (Cyrillic names, genre id lists, a standardised pop, album, duration) beside
the hidden files, and botify logs as its containers write them (``<container>/data.json``, JSON
lines). The search, export and confirmation run on it from the command line, as a user would."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from sim_bridge import defaults
from sim_bridge.contract import columns as C
from sim_bridge.contract.logs import read_logs
from sim_bridge.world import load_world

from tests.search.conftest import REPO

SYLLABLES = ["ка", "но", "ви", "ля", "ро", "ми", "зе", "ту", "ша", "ёж"]


def _name(i: int, width: int = 3) -> str:
    return "".join(SYLLABLES[(i // 10**k) % 10] for k in range(width)).capitalize()


def _course_lines(world) -> list[str]:
    """The smoke world's tracks, one course-schema line each, fields in the course's order."""
    rng = np.random.default_rng(3)
    n = world.catalog.n_tracks
    artists = world.catalog.artist_codes
    z = np.argsort(np.argsort(world.catalog.pop, kind="stable"), kind="stable") / (n - 1)  # rank in [0, 1]
    pop = np.round(-1.4 + 5.7 * z**3, 4)  # right-skewed, negative for most tracks
    genre = np.where(rng.random(n) < 0.45, 1, (artists % 7) * 20 + 6)  # [1] alone on ~45%, else by artist
    lines = []
    for t in range(n):
        ids = [int(genre[t])] + ([47] if t % 9 == 0 else [])
        lines.append(json.dumps({
            "artist": f"{_name(int(artists[t]))} {_name(int(artists[t]) * 7 + 1, 2)}",
            "album": f"Альбом {_name(int(artists[t]) % 50, 2)}", "title": _name(t, 4), "genre": ids,
            "pop": float(pop[t]), "duration": int(rng.integers(48, 837)), "track": t}, ensure_ascii=False))
    return lines


def _botify_logs(events: pd.DataFrame, folder) -> None:
    """Two containers' data.json, events split by user, each line one botify request."""
    for container in (0, 1):
        part = events[events[C.USER] % 2 == container]
        (folder / f"botify-{container}").mkdir(parents=True)
        with open(folder / f"botify-{container}" / "data.json", "w") as fh:
            for row in part.itertuples(index=False):
                obj = {"message": row.message, "timestamp": int(row.timestamp), "user": int(row.user),
                       "track": int(row.track), "time": float(row.time), "latency": float(row.latency),
                       "experiments": row.experiments}
                if row.message == C.MESSAGE_NEXT:
                    obj["recommendation"] = int(row.recommendation)
                fh.write(json.dumps(obj) + "\n")


@pytest.fixture(scope="module")
def course_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    smoke = defaults.ensure_smoke_world()
    world_dir = root / "data"
    world_dir.mkdir()
    for name in ("tracks.npy", "users.json"):
        (world_dir / name).write_bytes((smoke / name).read_bytes())
    (world_dir / "tracks.json").write_text("\n".join(_course_lines(load_world(smoke))) + "\n", encoding="utf-8")
    _botify_logs(read_logs(defaults.ensure_smoke_logs()), root / "logs")
    return root


def _run(root, module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ran = subprocess.run([sys.executable, "-m", module, *args], cwd=root, env=env, capture_output=True, text=True,
                         timeout=900)
    assert ran.returncode == 0, f"{module}: {ran.stdout[-3000:]}{ran.stderr[-3000:]}"
    return ran


def test_the_course_folder_is_what_the_course_writes(course_folder):
    line = json.loads((course_folder / "data" / "tracks.json").read_text(encoding="utf-8").splitlines()[9])
    assert list(line) == ["artist", "album", "title", "genre", "pop", "duration", "track"]
    assert isinstance(line["genre"], list) and all(isinstance(g, int) for g in line["genre"])
    assert isinstance(line["pop"], float) and any("а" <= ch <= "я" for ch in line["artist"].lower())
    assert load_world(course_folder / "data").catalog.pop.min() < 0


def test_search_export_and_confirm_on_the_course_folder(course_folder):
    root = course_folder
    ran = _run(root, "search.run", "--smoke-test", "--world", "data", "--logs", "logs", "--storage-path", "runs",
               "--name", "course", "--seed", "2")
    assert "inputs: world" in ran.stdout and "events)" in ran.stdout  # read the folder and both data.json files
    exp = root / "runs" / "course"
    trials = pd.read_parquet(exp / "trials.parquet")
    assert (trials["status"] == "finished").any()
    # the model's genre input is one column per genre id of the file (1, 47 and the by-artist ids)
    ids = {g for line in (root / "data" / "tracks.json").read_text(encoding="utf-8").splitlines()
           for g in json.loads(line)["genre"]}
    state = torch.load(exp / "best" / "checkpoint" / "model.pt", weights_only=True)
    assert state["dims"]["n_genres"] == len(ids)

    _run(root, "search.export", "runs/course", "--out", "export")
    recs = [json.loads(x) for x in (root / "export" / "recommendations.json").read_text().splitlines()]
    assert recs and set(recs[0]) == {"user", "tracks"}
    _run(root, "search.confirm", "runs/course", "--top-k", "1", "--sessions", "400")
    table = pd.read_csv(exp / "confirm" / "confirm.csv")
    assert (table["metric"] == "mean_time_per_session").any()
