"""The A/B test: botify's assignment, the course's table, SRM, the paired lift, A/A validity, calibration."""
import math
import warnings

import mmh3
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim_bridge import abtest
from sim_bridge.abtest import (
    TABLE_COLUMNS,
    TARGETS,
    SampleRatioMismatchWarning,
    ab_table,
    analyze,
    arm_index,
    arm_names,
    assign,
    experiment_seed,
    measure_baselines,
    paired_lift,
    simulate_experiment,
    srm_check,
    to_markdown,
    user_metrics,
    welch_ci,
    write_table,
)
from sim_bridge.contract import columns as C
from sim_bridge.contract.events import build_events
from sim_bridge.defaults import ensure_default_world
from sim_bridge.policies import StickyArtist
from sim_bridge.simulator import Simulator
from sim_bridge.world import load_world


def sessions_table(user, arm, time, tracks, latency=None) -> pd.DataFrame:
    n = len(user)
    return pd.DataFrame({
        C.SESSION: np.arange(n), C.USER: user, C.ARM: arm, C.TIME: np.asarray(time, float),
        C.TRACKS: tracks, C.LATENCY: np.zeros(n) if latency is None else latency,
        C.TRUNCATED: np.zeros(n, bool),
    })  # fmt: skip


def random_sessions(rng, n_sessions=4000, n_users=800, shift=0.0) -> pd.DataFrame:
    user = rng.integers(0, n_users, n_sessions)
    arm = np.where(user % 2 == 0, "C", "T1")
    time = rng.gamma(2.0, 1.5, n_sessions) + np.where(arm == "T1", shift, 0.0)
    return sessions_table(user, arm, time, rng.integers(5, 15, n_sessions), rng.random(n_sessions))


def test_user_metrics_tiny():
    s = sessions_table([1, 1, 2], ["C", "C", "T1"], [3.0, 1.0, 2.5], [6, 4, 5], [0.6, 0.4, 1.0])
    m = user_metrics(s).set_index(C.USER)
    assert m.loc[1, C.SESSIONS] == 2 and m.loc[1, C.TIME] == 3.0 + 1.0
    assert m.loc[1, C.MEAN_TIME_PER_SESSION] == (3.0 + 1.0) / 2
    assert m.loc[1, C.MEAN_TRACKS_PER_SESSION] == (6 + 4) / 2
    assert m.loc[1, C.MEAN_REQUEST_LATENCY] == pytest.approx((0.6 + 0.4) / (6 + 4))
    assert m.loc[2, C.ARM] == "T1" and m.loc[2, C.MEAN_TIME_PER_SESSION] == 2.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_ci_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    c, t = rng.normal(3.0, 1.0, 300), rng.normal(3.2, 2.0, 500)
    diff, lo, hi = welch_ci(c, t)
    ci = stats.ttest_ind(t, c, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(t.mean() - c.mean(), rel=1e-12)
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_ab_table_columns_and_scaling():
    rng = np.random.default_rng(3)
    m = user_metrics(random_sessions(rng, shift=0.3))
    table = ab_table(m, model_names={"T1": "DSSM"})
    assert tuple(table.columns) == TABLE_COLUMNS
    assert set(table["model"]) == {"DSSM"} and len(table) == 5
    row = table.set_index("metric").loc[C.MEAN_TIME_PER_SESSION]
    c = m.loc[m[C.ARM] == "C", C.MEAN_TIME_PER_SESSION]
    t = m.loc[m[C.ARM] == "T1", C.MEAN_TIME_PER_SESSION]
    ci = stats.ttest_ind(t, c, equal_var=False).confidence_interval()
    assert row["effect"] == pytest.approx((t.mean() - c.mean()) / c.mean() * 100)
    assert (row["lower"], row["upper"]) == pytest.approx((ci.low / c.mean() * 100, ci.high / c.mean() * 100))
    assert row["significant"] == (row["lower"] > 0 or row["upper"] < 0)


def test_ab_table_constant_shift_is_exact():
    rng = np.random.default_rng(4)
    base = rng.gamma(2.0, 1.5, 1000)
    m = pd.DataFrame({C.ARM: ["C"] * 1000 + ["T1"] * 1000, C.USER: np.arange(2000),
                      C.MEAN_TIME_PER_SESSION: np.concatenate([base, base + 0.25])})
    row = ab_table(m, metrics=[C.MEAN_TIME_PER_SESSION]).iloc[0]
    assert row["effect"] == pytest.approx(0.25 / base.mean() * 100, rel=1e-12)
    assert row["treatment_mean"] - row["control_mean"] == pytest.approx(0.25, rel=1e-12)
    # equal variances and sizes: the CI is symmetric around the effect
    assert row["upper"] - row["effect"] == pytest.approx(row["effect"] - row["lower"], rel=1e-9)


def test_ab_table_needs_control():
    m = pd.DataFrame({C.ARM: ["T1", "T2"], C.USER: [1, 2], C.TIME: [1.0, 2.0]})
    with pytest.raises(ValueError, match="control arm 'C'"):
        ab_table(m, metrics=[C.TIME])


def test_srm_flags_60_40_not_50_50():
    with pytest.warns(SampleRatioMismatchWarning):
        chi2, p = srm_check({"C": 6000, "T1": 4000})
    assert chi2 == pytest.approx((6000 - 5000) ** 2 / 5000 * 2) and p < 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chi2, p = srm_check({"C": 5000, "T1": 5000})
    assert chi2 == 0.0 and p == 1.0
    # a designed 60/40 split is fine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert srm_check({"C": 6000, "T1": 4000}, {"C": 0.6, "T1": 0.4})[1] == pytest.approx(1.0)


def test_paired_lift_identical_is_exactly_zero():
    s = random_sessions(np.random.default_rng(5))
    r = paired_lift(s, s.copy())
    assert r.effect == 0.0 and r.lower == 0.0 and r.upper == 0.0
    assert not r.significant and r.n_users == s[C.USER].nunique()


def test_paired_lift_constant_shift():
    s = random_sessions(np.random.default_rng(6))
    t = s.assign(**{C.TIME: s[C.TIME] + 0.5})  # every session +0.5 → every user mean +0.5
    r = paired_lift(s, t)
    per_user = s.groupby(C.USER)[C.TIME].mean()
    assert r.control_mean == pytest.approx(per_user.mean(), rel=1e-12)
    assert r.effect == pytest.approx(0.5 / per_user.mean() * 100, rel=1e-9)
    assert r.significant and r.lower < r.effect < r.upper


def test_paired_lift_ci_covers_at_nominal_rate():
    # true effect 0 (treatment = control + independent noise): the 95% CI should cover 0
    # in about 95% of 200 replications; binomial SE = sqrt(.95 * .05 / 200) ~ 0.015
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(200):
        s = random_sessions(rng, n_sessions=600, n_users=150)
        noise = rng.normal(0.0, 0.5, len(s))
        r = paired_lift(s, s.assign(**{C.TIME: s[C.TIME] + noise}))
        hits += r.lower <= 0 <= r.upper
    assert abs(hits / 200 - 0.95) < 4 * 0.0154


def test_markdown_and_csv(tmp_path):
    table = pd.DataFrame({"model": ["DSSM"], "effect": [1.2345], "significant": [True]})
    assert to_markdown(table) == "| model | effect | significant |\n|---|---|---|\n| DSSM | 1.23 | True |\n"
    write_table(table, tmp_path / "t.md")
    write_table(table, tmp_path / "t.csv")
    assert (tmp_path / "t.md").read_text() == to_markdown(table)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), table)
    with pytest.raises(ValueError, match="suffix"):
        write_table(table, tmp_path / "t.txt")


def test_analyze_from_events():
    # users 0..: even users in C with sessions of 3 tracks, odd in T1 with 4 tracks, all time 1.0
    rows = []
    for user in range(20):
        arm, length = ("C", 3) if user % 2 == 0 else ("T1", 4)
        for k in range(length):
            rows.append((user, user, 1.0, -1 if k == length - 1 else 1, 10 * user + k, arm))
    session, user, time, rec, ts, arm = (np.array(col) for col in zip(*rows))
    ev = build_events(session, user, np.zeros(len(user), int), time, rec, ts, np.full(len(user), 0.01), arm, "E")
    table = analyze(ev, "E", metrics=[C.MEAN_TRACKS_PER_SESSION, C.MEAN_TIME_PER_SESSION]).set_index("metric")
    assert table.loc[C.MEAN_TRACKS_PER_SESSION, "effect"] == pytest.approx((4 - 3) / 3 * 100)
    assert table.loc[C.MEAN_TIME_PER_SESSION, "control_mean"] == 3.0
    assert table.loc[C.MEAN_TIME_PER_SESSION, "treatment_mean"] == 4.0


# --------------------------------------------------------------------------- assignment
# botify's arm assignment, checked against mmh3 calls written out by hand.


def test_arm_names():
    assert arm_names(1) == ["C"]
    assert arm_names(3) == ["C", "T1", "T2"]
    with pytest.raises(ValueError):
        arm_names(0)


def test_negative_name_hash_is_masked_to_unsigned_seed():
    # mmh3.hash("STICKY") is negative: -1005745659; as an unsigned 32-bit seed that is
    # -1005745659 + 2**32 = 3289221637.
    assert mmh3.hash("STICKY") == -1005745659
    assert experiment_seed("STICKY") == -1005745659 + 2**32 == 3289221637


def test_arm_index_matches_hand_computed_botify_hashes():
    seed = 3289221637  # experiment_seed("STICKY"), see above
    # botify: mmh3.hash(str(user), seed, signed=False) % n_arms
    assert mmh3.hash("0", seed=seed, signed=False) == 1094395420  # % 2 = 0, % 3 = 1
    assert mmh3.hash("1", seed=seed, signed=False) == 2043385748  # % 2 = 0, % 3 = 2
    assert mmh3.hash("42", seed=seed, signed=False) == 2942587820  # % 2 = 0, % 3 = 2
    users = np.array([0, 1, 42, 0])
    np.testing.assert_array_equal(arm_index(users, "STICKY", 2), [0, 0, 0, 0])
    np.testing.assert_array_equal(
        arm_index(users, "STICKY", 3), [1094395420 % 3, 2043385748 % 3, 2942587820 % 3, 1]
    )
    assert list(assign(users, "STICKY", 3)) == ["T1", "T2", "T2", "T1"]


def test_positive_name_hash():
    # mmh3.hash("STICKY_VS_DSSM") = 114631823 >= 0, so it is the seed unchanged.
    seed = mmh3.hash("STICKY_VS_DSSM")
    assert seed == 114631823
    assert mmh3.hash("1", seed=114631823, signed=False) == 149470571  # odd → T1 of 2
    assert mmh3.hash("0", seed=114631823, signed=False) == 3205836814  # even → C
    np.testing.assert_array_equal(arm_index(np.array([1, 0]), "STICKY_VS_DSSM", 2), [1, 0])


def test_arm_index_keeps_shape_and_rejects_floats():
    users = np.arange(6).reshape(2, 3)
    assert arm_index(users, "X", 2).shape == (2, 3)
    with pytest.raises(TypeError):
        arm_index(np.array([1.5]), "X", 2)


@pytest.mark.parametrize("n_arms", [2, 4])
def test_assignment_is_uniform(n_arms):
    n = 20_000
    counts = np.bincount(arm_index(np.arange(n), "UNIFORMITY", n_arms), minlength=n_arms)
    # each count ~ Binomial(n, 1/k): within 5 binomial standard errors of n/k
    se = np.sqrt(n * (1 / n_arms) * (1 - 1 / n_arms))
    assert np.all(np.abs(counts - n / n_arms) < 5 * se), counts
    chi2 = ((counts - n / n_arms) ** 2 / (n / n_arms)).sum()
    assert chi2 < stats.chi2.ppf(1 - 1e-4, df=n_arms - 1)


def test_different_experiments_assign_differently():
    users = np.arange(1000)
    a, b = arm_index(users, "A", 2), arm_index(users, "B", 2)
    # independent hashes agree on about half the users (SE = sqrt(1000/4) ~ 16)
    assert abs((a == b).sum() - 500) < 5 * 16


# --------------------------------------------------------------------------- validity
# An A/A test (sticky_artist against itself) is significant in about 5% of seeds.


SEEDS = 200
NOMINAL = 0.05  # the table's 95% intervals
SE = math.sqrt(NOMINAL * (1 - NOMINAL) / SEEDS)  # binomial standard error of the rate: 1.5 points


def test_aa_false_positive_rate_is_about_five_percent(smoke_world):
    sim = Simulator(smoke_world)
    sticky = StickyArtist(smoke_world.catalog)
    significant = []
    for seed in range(SEEDS):
        sessions = simulate_experiment(sim, [sticky, sticky], "aa", 1_000, seed).sessions
        table = abtest.ab_table(abtest.user_metrics(sessions), metrics=[C.MEAN_TIME_PER_SESSION])
        significant.append(bool(table["significant"].iloc[0]))
    rate = float(np.mean(significant))
    # both sides, 3 standard errors from the nominal rate: not inflated (above ~10%), and not
    # implausibly 0 (intervals too wide: at 5%, 200 seeds without one false positive has p ≈ 4e-5)
    assert NOMINAL - 3 * SE <= rate <= NOMINAL + 3 * SE, rate


# --------------------------------------------------------------------------- calibration
# The default world reproduces the course's baseline numbers (docs/seed.md) within ±3%.


@pytest.fixture(scope="module")
def baselines():
    return measure_baselines(load_world(ensure_default_world()), n_sessions=20_000, seed=1)


@pytest.mark.parametrize("policy", sorted(TARGETS))
def test_baseline_matches_the_course_within_3_percent(baselines, policy):
    row = baselines[policy]
    assert abs(row["time"] / TARGETS[policy] - 1) <= 0.03, row


def test_sticky_artist_beats_random_by_the_course_margin(baselines):
    # course: +45.6% (2.99 vs 2.05); the lift's SE here is about 1%, so ±5 points is generous
    lift = 100 * (baselines["sticky_artist"]["time"] / baselines["random"]["time"] - 1)
    assert 40.6 <= lift <= 50.6
