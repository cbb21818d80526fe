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
    # the built-in world (v4): public arms only; v3's (by --world-config) had three hidden-list arms
    assert builtin_logs_arms(smoke=False) == ["random", "sticky_artist", "sticky_artist", "toppop_catalog"]
    assert builtin_logs_arms(smoke=True) == ["random", "sticky_artist", "toppop_catalog"]


def test_world_v3_stays_reachable_and_labelled(monkeypatch):
    from sim_bridge import defaults

    monkeypatch.setenv(defaults.WORLD_CONFIG_ENV, str(defaults.CONFIG_DIR / "world_v3.yaml"))
    arms = builtin_logs_arms(smoke=False)
    assert len(arms) == 6 and arms.count("contextual_hidden:100") == 3
    assert "HIDDEN-LIST LOGS: 3 of 6 arms" in logs_text("logs.parquet", arms)
