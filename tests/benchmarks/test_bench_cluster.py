"""benchmarks/bench_cluster.py runs end to end in its smoke mode: the same search on one node and two."""
from tests.benchmarks.smoke import last_json, run


def test_bench_cluster_smoke_runs_the_search_on_one_node_then_two():
    out = last_json(run("bench_cluster.py", "--smoke"))
    one, two = out["one_node"], out["two_nodes"]
    assert one["trials"] == two["trials"] == 8  # configs/smoke.yaml's num_samples
    assert len(one["trials_per_node"]) == 1 and len(two["trials_per_node"]) == 2  # the second node ran trials
    assert sum(two["trials_per_node"].values()) == 8
    assert one["trials_per_min"] > 0 and two["trials_per_min"] > 0
    assert out["ratio"] == round(two["trials_per_min"] / one["trials_per_min"], 3)
