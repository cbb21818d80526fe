"""``python -m search.loop`` on the smoke world: one loop of two rounds (one trial each), killed
between steps twice and resumed, its second round fed a ``search.serve --log-dir``-style folder
after a malformed one was refused, then rerun once it was done. Two searches in all."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.config import load_experiment_config
from search import experiment
from search import loop as L
from search import loop_logs
from search import run as search_run
from sim_bridge import defaults
from sim_bridge.contract import columns as C
from sim_bridge.contract.events import sessionize
from sim_bridge.contract.logs import read_logs, write_logs
from sim_bridge.world import load_world
from tests.search.conftest import REPO, run_main

YEAR_MS = 365 * 86_400_000


class Killed(BaseException):
    """A kill between two steps: not an Exception, so nothing in the loop catches it."""


@dataclass
class SmokeLoop:
    out: Path
    served: Path  # --logs-from ROOT
    argv: list[str]
    searches: list[int] = field(default_factory=list)  # search.run calls, per invocation
    state_after: dict[str, dict] = field(default_factory=dict)  # invocation → state.json after it
    ran: dict[str, object] = field(default_factory=dict)  # invocation → what run_main returned
    service_events: pd.DataFrame | None = None
    files_before_rerun: dict[str, tuple[int, bytes]] = field(default_factory=dict)


def _state(out: Path) -> dict:
    return json.loads((out / L.STATE_FILE).read_text())


def _service_logs(world_dir: Path, winner: str, path: Path) -> pd.DataFrame:
    """What a deployed winner's service logs look like: botify JSON lines in REPLICA/data.json, with
    wall-clock timestamps (a year after the simulated logs) and no experiment."""
    cfg = defaults.LoggingConfig(experiment="http", arms=[winner], sessions=200, seed=4242)
    events = loop_logs.simulate_round(load_world(world_dir), cfg, path.parent / "sim.parquet")
    (path.parent / "sim.parquet").unlink()
    events[C.TIMESTAMP] += YEAR_MS
    events[C.EXPERIMENTS] = [{}] * len(events)
    write_logs(events, path)
    return read_logs(path)


@pytest.fixture(scope="module")
def smoke_loop(tmp_path_factory) -> SmokeLoop:
    root = tmp_path_factory.mktemp("loop")
    seen = SmokeLoop(out=root / "L", served=root / "served",
                     argv=["--rounds", "2", "--smoke-test", "--num-samples", "1", "--out", str(root / "L")])
    seen.served.mkdir()
    mp = pytest.MonkeyPatch()
    calls = []
    real_run = search_run.run
    mp.setattr(search_run, "run", lambda args: calls.append(args.name) or real_run(args))

    def invocation(name: str, kill: tuple[int, str] | None = None, extra: tuple[str, ...] = (), capture=False):
        def hook(r, step):
            if (r, step) == kill:
                raise Killed
        mp.setattr(L, "after_step", hook)
        before = len(calls)
        if capture:
            seen.ran[name] = run_main("search.loop", *seen.argv, *extra)
        elif kill:
            with pytest.raises(Killed):
                L.main(seen.argv + list(extra))
        else:
            assert L.main(seen.argv + list(extra)) == 0
        seen.searches.append(len(calls) - before)
        seen.state_after[name] = _state(seen.out)

    try:
        invocation("killed after round 1's logging", kill=(1, "logging"))
        invocation("killed after round 2's confirm", kill=(2, "confirm"))
        bad = seen.served / "round-2" / "replica-a" / "data.json"
        bad.parent.mkdir(parents=True)
        bad.write_text('{"message": "next", "timestamp": 1, "user": 3, "track": 5, "time": 1.0}\n'
                       '{"message": "next", "timestamp": 2, "user": 3, "track": "x", "time": 1.0}\n')
        invocation("malformed service logs", extra=("--logs-from", str(seen.served)), capture=True)
        invocation("missing --logs-from", extra=("--logs-from", str(root / "nowhere")), capture=True)
        winner = seen.state_after["killed after round 2's confirm"]["rounds"]["2"]["export"]["winner"]
        world = Path(experiment.read_run_file(seen.out / "round-2" / "search")["world"])
        seen.service_events = _service_logs(world, winner, bad)
        invocation("service logs", extra=("--logs-from", str(seen.served)))
        seen.files_before_rerun = {p.name: (p.stat().st_mtime_ns, p.read_bytes())
                                   for p in (seen.out / n for n in (L.STATE_FILE, L.TABLE_JSON, L.TABLE_MD))}
        invocation("rerun", capture=True)
        invocation("a third round without --logs-from", extra=("--rounds", "3"), capture=True)
    finally:
        mp.undo()
    return seen


def test_round_2_searches_round_1_logs_plus_its_logging_run(smoke_loop):
    out = smoke_loop.out
    start = read_logs(Path(smoke_loop.state_after["service logs"]["rounds"]["1"]["search"]["logs"]))
    new = read_logs(out / "round-1" / "logging.parquet")
    logs = read_logs(out / "round-1" / "logs.parquet")
    assert len(new) > 0 and len(logs) == len(start) + len(new)
    pd.testing.assert_frame_equal(logs.iloc[: len(start)].reset_index(drop=True), start)
    tail = logs.iloc[len(start):].reset_index(drop=True)
    shift = tail[C.TIMESTAMP] - new[C.TIMESTAMP]
    assert shift.nunique() == 1 and tail[C.TIMESTAMP].min() > start[C.TIMESTAMP].max()  # a later period
    pd.testing.assert_frame_equal(tail.drop(columns=C.TIMESTAMP), new.drop(columns=C.TIMESTAMP))
    run2 = experiment.read_run_file(out / "round-2" / "search")
    assert run2["logs"] == str(out / "round-1" / "logs.parquet")
    assert run2["warm_start"] == str(out / "round-1" / "search") and run2["seed"] == 1


def _expected_spec(best: Path) -> str:
    serving = load_experiment_config(best / "config.yaml").serving
    if serving.policy in ("indexed", "sequential"):
        return f"{serving.policy}:{best}/recommendations.json"
    if serving.policy == "i2i":
        return f"i2i:{best}/item_recommendations.json:{serving.like_threshold}:{serving.skip_artists}"
    return f"{serving.policy}:{best}/item_recommendations.json"


def test_the_logging_run_serves_the_winner_beside_the_baselines(smoke_loop):
    out = smoke_loop.out
    record = json.loads((out / "round-1" / "logging.json").read_text())
    spec = _expected_spec(out / "round-1" / "best")
    base = defaults.SMOKE_LOGGING
    assert record["arms"] == ["random", "sticky_artist", "toppop_catalog", spec, spec, spec]
    assert (record["sessions"], record["seed"], record["experiment"]) == (base.sessions, base.seed + 1,
                                                                          "smoke-logging-round-1")
    events = read_logs(out / "round-1" / "logging.parquet")
    sessions = sessionize(events, record["experiment"])
    time_by_arm = sessions.groupby(C.ARM)[C.TIME].mean()
    assert set(time_by_arm.index) == {"C", "T1", "T2", "T3", "T4", "T5"}
    # the winner (T3..T5, about half the sessions) listens longer than sticky_artist (T1): it was served
    assert min(time_by_arm[["T3", "T4", "T5"]]) > time_by_arm["T1"]
    assert sessions[C.ARM].isin(["T3", "T4", "T5"]).mean() > 0.4


def test_same_seed_same_logging_run(smoke_loop, tmp_path):
    out = smoke_loop.out
    record = json.loads((out / "round-1" / "logging.json").read_text())
    baselines = L.LoopConfig().baselines
    cfg = loop_logs.round_logging(defaults.SMOKE_LOGGING, baselines, 3, record["arms"][-1], 1)
    world = load_world(experiment.read_run_file(out / "round-1" / "search")["world"])
    again = loop_logs.simulate_round(world, cfg, tmp_path / "again.parquet")
    pd.testing.assert_frame_equal(read_logs(tmp_path / "again.parquet"), read_logs(out / "round-1" / "logging.parquet"))
    assert len(again) == record["events"]
    cfg2 = loop_logs.round_logging(defaults.SMOKE_LOGGING, baselines, 3, record["arms"][-1], 2)
    other = loop_logs.simulate_round(world, cfg2, tmp_path / "other.parquet")
    assert len(other) != len(again) or not np.array_equal(other[C.TRACK], again[C.TRACK])  # a new seed a round
    doubled = loop_logs.round_logging(defaults.SMOKE_LOGGING, baselines, 3, record["arms"][-1], 1,
                                      sessions=2 * defaults.SMOKE_LOGGING.sessions)  # --round-sessions
    more = loop_logs.simulate_round(world, doubled, tmp_path / "more.parquet")
    assert len(sessionize(more, doubled.experiment)) == 2 * len(sessionize(again, cfg.experiment))


def test_the_confirmation_follows_from_the_seeds(smoke_loop):
    from sim_bridge.abtest import unpaired_ab

    out = smoke_loop.out
    rounds = _state(out)["rounds"]
    record = rounds["1"]["confirm"]
    assert record["trial_id"] == rounds["1"]["export"]["trial_id"]  # the exported winner was confirmed
    world = load_world(experiment.read_run_file(out / "round-1" / "search")["world"])
    policy = experiment.trial_policy(out / "round-1" / "best", world.catalog)
    table = unpaired_ab(world, policy, "confirm-round-1", 600, record["seed"] + 1, "again")  # 300 sessions took + 0
    row = table[table["metric"] == C.MEAN_TIME_PER_SESSION].iloc[0]
    assert (row["effect"], row["lower"], row["upper"]) == pytest.approx(
        (record["effect"], record["lower"], record["upper"]), rel=1e-12)


def test_the_table_has_a_row_per_round_with_finite_lifts(smoke_loop):
    out = smoke_loop.out
    table = json.loads((out / "loop.json").read_text())
    rows = table["rounds"]
    assert [row["round"] for row in rows] == [1, 2]
    assert [row["logging"] for row in rows] == ["simulated", "service"]
    for row in rows:
        for kind in ("best", "confirmed"):
            lift, lower, upper = (row[f"{kind}_{x}"] for x in ("lift", "lower", "upper"))
            assert all(math.isfinite(v) for v in (lift, lower, upper)) and lower <= lift <= upper, row
        assert row["wall_s"] > 0 and row["confirm_sessions"] == 600
    assert rows[1]["events"] == len(read_logs(out / "round-1" / "logs.parquet"))
    assert rows[1]["logs"] == str(out / "round-1" / "logs.parquet")
    md = (out / "loop.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in md if line.startswith("| ") and line[2].isdigit()] == ["1", "2"]


def test_resumes_after_a_kill_between_steps_without_redoing_a_step(smoke_loop):
    # one search per round: the invocations after each kill did not search again
    assert smoke_loop.searches == [1, 1, 0, 0, 0, 0, 0]
    after = smoke_loop.state_after
    assert set(after["killed after round 1's logging"]["rounds"]) == {"1"}
    assert list(after["killed after round 1's logging"]["rounds"]["1"]) == ["search", "export", "confirm", "logging"]
    assert list(after["killed after round 2's confirm"]["rounds"]["2"]) == ["search", "export", "confirm"]
    # what the first invocation recorded stayed as it was
    first = after["killed after round 1's logging"]["rounds"]["1"]
    assert {k: after["service logs"]["rounds"]["1"][k] for k in first} == first
    for r in (1, 2):
        assert len(pd.read_parquet(smoke_loop.out / f"round-{r}" / "search" / "trials.parquet")) == 1


def test_service_logs_are_appended_as_they_are(smoke_loop):
    out = smoke_loop.out
    record = smoke_loop.state_after["service logs"]["rounds"]["2"]["logging"]
    assert record["source"] == "service" and record["folder"] == str(smoke_loop.served / "round-2")
    logs, before = read_logs(out / "round-2" / "logs.parquet"), read_logs(out / "round-1" / "logs.parquet")
    service = smoke_loop.service_events
    assert len(logs) == len(before) + len(service)
    pd.testing.assert_frame_equal(logs.iloc[len(before):].reset_index(drop=True), service)  # timestamps too


def test_bad_logs_from_is_one_clear_line(smoke_loop):
    ran = smoke_loop.ran["malformed service logs"]
    assert ran.returncode == 2 and ran.stderr.count("\n") == 1 and "Traceback" not in ran.stderr
    assert "round-2/replica-a/data.json:2: field 'track' must be an integer" in ran.stderr, ran.stderr
    ran = smoke_loop.ran["missing --logs-from"]
    assert ran.returncode == 2 and ran.stderr.startswith("error: --logs-from ") and "no such folder" in ran.stderr
    # refused before any work: the state is what the killed invocation left
    after = smoke_loop.state_after
    assert after["malformed service logs"] == after["killed after round 2's confirm"]
    ran = smoke_loop.ran["a third round without --logs-from"]
    assert ran.returncode == 2 and "appended a service's logs" in ran.stderr
    assert not (smoke_loop.out / "round-3").exists()


def test_a_rerun_after_completion_does_nothing(smoke_loop):
    ran = smoke_loop.ran["rerun"]
    assert ran.returncode == 0 and "nothing to do" in ran.stdout
    for name, (mtime, data) in smoke_loop.files_before_rerun.items():
        path = smoke_loop.out / name
        assert (path.stat().st_mtime_ns, path.read_bytes()) == (mtime, data), name


def test_a_loop_folder_is_never_overwritten_by_other_settings(smoke_loop, tmp_path):
    before = (smoke_loop.out / L.STATE_FILE).read_bytes()
    argv = [a if a != "1" else "2" for a in smoke_loop.argv]  # --num-samples 2
    ran = run_main("search.loop", *argv)
    assert ran.returncode == 2 and "--num-samples 1 there, 2 now" in ran.stderr
    ran = run_main("search.loop", *smoke_loop.argv, "--round-sessions", "500")
    assert ran.returncode == 2 and "--round-sessions null there, 500 now" in ran.stderr
    ran = run_main("search.loop", *smoke_loop.argv, "--round-sessions", "0")
    assert ran.returncode == 2 and "--round-sessions must be >= 1, got 0" in ran.stderr
    assert (smoke_loop.out / L.STATE_FILE).read_bytes() == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    ran = run_main("search.loop", "--rounds", "1", "--smoke-test", "--out", str(tmp_path / "mine"))
    assert ran.returncode == 2 and "holds no loop" in ran.stderr
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_service_logs_before_the_round_has_a_winner_are_refused(tmp_path):
    (tmp_path / "served" / "round-1" / "r").mkdir(parents=True)
    ran = run_main("search.loop", "--rounds", "1", "--smoke-test", "--out", str(tmp_path / "L"),
                   "--logs-from", str(tmp_path / "served"))
    assert ran.returncode == 2 and "round 1 has no winner yet" in ran.stderr
    assert not (tmp_path / "L" / "round-1").exists()


def test_the_command_line_error_has_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "search.loop", "--rounds", "1", "--out", str(tmp_path / "L"),
                           "--logs-from", str(tmp_path / "missing")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == (f"error: --logs-from {tmp_path / 'missing'}: no such folder (round r's logs go to "
                           f"{tmp_path / 'missing'}/round-<r>, as search.serve --log-dir writes them)\n")
    assert not (tmp_path / "L").exists()
