"""What a cluster adds to the driver's records: the code shipped to workers, each node's cache, the
node a trial reported from and how often Tune retried it — without Ray running."""
import json
from pathlib import Path
from types import SimpleNamespace as T

from search import cluster, trials
from search.config import objective
from search.progress import StatusTable, render
from search.trainable import on_this_node
from search.trial import TrialSetup

REPO = Path(__file__).resolve().parents[2]


def test_the_job_ships_the_repository_without_the_heavy_folders():
    env = cluster.code_env(REPO, {"X": "1"})
    assert env["working_dir"] == str(REPO) and env["env_vars"] == {"X": "1"}
    assert {".git/", ".venv/", "runs/", "*.parquet", "*.pt"} <= set(env["excludes"])
    assert "env_vars" not in cluster.code_env(REPO)  # no PYTHONPATH: the working_dir is on the workers' path


def test_a_trial_uses_the_cache_of_the_node_it_runs_on(monkeypatch, tmp_path):
    monkeypatch.setenv("BOTIFY_TUNE_CACHE", str(tmp_path / "node-cache"))
    setup = TrialSetup(data_cache="/home/driver/.cache/botify-tune/training-data")
    assert on_this_node(setup).data_cache == str(tmp_path / "node-cache" / "training-data")
    assert on_this_node(TrialSetup(data_cache=None)).data_cache is None  # shared data: no cache


def test_a_retried_trial_is_one_row_with_its_retry_and_both_nodes(tmp_path):
    folder = tmp_path / "trial"
    folder.mkdir()
    lines = [{"epoch": 1, "node_id": "worker"}, {"epoch": 1, "node_id": "head"}, {"final": True, "node_id": "head"}]
    (folder / "result.json").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"cut sh')
    trial = T(trial_id="a", status="TERMINATED", last_result=lines[-1], config={}, checkpoint=None,
              path=str(folder), run_metadata=T(num_failures=1))
    row = trials._row(trial)
    assert (row["retries"], row["nodes"], row["node_id"], row["status"]) == (1, "worker,head", "head", "finished")
    plain = T(trial_id="b", status="RUNNING", last_result={}, config={}, checkpoint=None, path=str(tmp_path / "none"))
    assert (trials._row(plain)["retries"], trials._row(plain)["nodes"]) == (0, "")


def test_the_progress_view_counts_a_retried_trial_once_and_says_so(capsys, tmp_path):
    error = tmp_path / "error.txt"
    error.write_text("Failure # 1\nThe actor died because its node has died. Node Id: abc\n")
    retried = T(trial_id="a", status="RUNNING", last_result={"final": False, "epoch": 1}, config={},
                run_metadata=T(num_failures=1), max_failures=1, error_file=str(error))
    other = T(trial_id="b", status="PENDING", last_result={}, config={})
    assert render([retried, other], objective("score"), top=5).splitlines()[0] == (
        "trials: 0 finished, 0 stopped early, 0 errored, 1 running, 1 pending "
        "(1 retried after a failure: --max-failures)")
    StatusTable(objective("score")).on_trial_recover(0, [retried, other], retried)
    assert capsys.readouterr().out == ("trial a failed (The actor died because its node has died. Node Id: abc); "
                                       "retry 1 of 1 (--max-failures), from its last checkpoint or its start\n")
