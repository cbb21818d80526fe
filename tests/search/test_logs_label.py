"""A search says which training logs it read, and when their logging policies read hidden truth."""
from search.formatting import logs_text
from search.run import builtin_logs_arms


def test_hidden_list_logs_are_named_as_such():
    line = logs_text("logs.parquet", ["random", "sticky_artist", "contextual_hidden:100", "contextual_hidden:100"])
    assert "HIDDEN-LIST LOGS: 2 of 4 arms read the simulator's hidden truth (contextual_hidden:100)" in line


def test_public_and_given_logs():
    assert logs_text("p.parquet", ["random", "toppop_catalog"]).endswith("(public policies only)")
    assert "not recorded" in logs_text("mine/", None)
    assert "HIDDEN" not in logs_text("mine/", None)


def test_builtin_logs_arms_are_the_world_configs_logging_run():
    # the built-in world (v3) inherits v2's logging run: three of its six arms read hidden lists
    arms = builtin_logs_arms(smoke=False)
    assert len(arms) == 6 and arms.count("contextual_hidden:100") == 3
    assert builtin_logs_arms(smoke=True) == ["random", "sticky_artist", "toppop_catalog"]
