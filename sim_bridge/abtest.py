"""The A/B test (docs/ab_test.md): botify's assignment, simulated experiments, the course's table.

* **assignment**: botify's user → arm, bit-identical to ``Experiment.assign``: the experiment
  name is hashed once, ``h = mmh3.hash(name)`` (signed 32-bit, seed 0), and a user goes to
  ``mmh3.hash(str(user), seed=h & 0xFFFFFFFF, signed=False) % n_arms``; arm 0 is the control
  ``"C"``, arm ``k`` is ``f"T{k}"``;
* **experiments**: each arm serves its own policy to the users botify assigns it
  (:func:`simulate_experiment`);
* **unpaired analysis** (the course's method): per-user metrics from sessions (sessionized logs
  or the simulator's table), per-arm means, effect in % of the control mean, 95% CI from Welch's
  t with Welch–Satterthwaite degrees of freedom on the difference of means, divided by the
  control mean; a chi-square sample-ratio check; the seed's A/B of a treatment against
  sticky_artist (:func:`unpaired_ab`);
* **paired lift** (the search objective): the same users under both policies with common random
  numbers, CI by the delta method on the ratio of paired means (:func:`paired_lift`,
  :func:`paired_eval`);
* **calibration**: the baselines on a world, measured as the course measured them.
"""
from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence, TextIO

import mmh3
import numpy as np
import pandas as pd
from scipy import stats

from sim_bridge.contract import columns as C
from sim_bridge.contract.files import atomic_write_text
from sim_bridge.contract.events import sessionize
from sim_bridge.policies import Policy, Random, StickyArtist, TopPop
from sim_bridge.simulator import SimConfig, SimResult, Simulator
from sim_bridge.world import World

CONTROL = "C"


# --------------------------------------------------------------------------- assignment


def arm_names(n_arms: int) -> list[str]:
    """Names of ``n_arms`` arms: ``["C", "T1", ..., f"T{n_arms - 1}"]``."""
    if n_arms < 1:
        raise ValueError(f"n_arms must be >= 1, got {n_arms}")
    return [CONTROL] + [f"T{k}" for k in range(1, n_arms)]


def experiment_seed(experiment: str) -> int:
    """The murmur3 seed botify derives from an experiment name: ``mmh3.hash(name) & 0xFFFFFFFF``."""
    return mmh3.hash(experiment) & 0xFFFFFFFF


def arm_index(users: np.ndarray, experiment: str, n_arms: int) -> np.ndarray:
    """int64 [n]: botify's arm index (0 = control) of each user in ``users``.

    Hashes each distinct user once (botify hashes ``str(user)``, so ids must be integers).
    """
    if n_arms < 1:
        raise ValueError(f"n_arms must be >= 1, got {n_arms}")
    users = np.asarray(users)
    if users.size and users.dtype.kind not in "iu":
        raise TypeError(f"user ids must be integers, got dtype {users.dtype}")
    seed = experiment_seed(experiment)
    unique, inverse = np.unique(users.astype(np.int64), return_inverse=True)
    hashes = np.fromiter(
        (mmh3.hash(str(int(u)), seed=seed, signed=False) for u in unique),
        dtype=np.int64,
        count=unique.size,
    )
    return (hashes % n_arms)[inverse.reshape(users.shape)]


def assign(users: np.ndarray, experiment: str, n_arms: int) -> np.ndarray:
    """object [n]: arm name ("C", "T1", ...) of each user; see :func:`arm_index`."""
    names = np.array(arm_names(n_arms), dtype=object)
    return names[arm_index(users, experiment, n_arms)]


# --------------------------------------------------------------------------- experiments


def simulate_experiment(
    sim: Simulator,
    policies: list[Policy],
    experiment: str,
    n_sessions: int,
    seed: int,
    record_events: bool = False,
) -> SimResult:
    """Run ``policies`` as arms C, T1, ... of ``experiment`` (botify's user assignment)."""
    if not policies:
        raise ValueError("an experiment needs at least one arm")
    plan = sim.plan(n_sessions, seed)
    users = sim.world.users.user[plan.user_index]
    arms: Mapping[str, Policy] = dict(zip(arm_names(len(policies)), policies))
    return sim.run(arms, n_sessions, seed, arm_of_session=arm_index(users, experiment, len(policies)),
                   record_events=record_events)


# --------------------------------------------------------------------------- the course's table (unpaired)


DEFAULT_METRICS = (
    C.TIME,
    C.SESSIONS,
    C.MEAN_TRACKS_PER_SESSION,
    C.MEAN_TIME_PER_SESSION,
    C.MEAN_REQUEST_LATENCY,
)
TABLE_COLUMNS = ("model", "metric", "effect", "upper", "lower", "control_mean", "treatment_mean", "significant")
SRM_ALPHA = 0.001
Z95 = float(stats.norm.ppf(0.975))


class SampleRatioMismatchWarning(UserWarning):
    """Arms received shares of users far from the designed ones (SRM p < 0.001)."""


def user_metrics(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per (arm, user) metrics from a per-session table (session, user, arm, time, tracks, latency).

    Returns columns arm, user, time, sessions, tracks, latency, mean_time_per_session,
    mean_tracks_per_session, mean_request_latency (= latency sum / tracks).
    """
    g = sessions.groupby([C.ARM, C.USER], sort=True)
    out = g.agg(
        **{C.TIME: (C.TIME, "sum"), C.SESSIONS: (C.SESSION, "size"),
           C.TRACKS: (C.TRACKS, "sum"), C.LATENCY: (C.LATENCY, "sum")}
    ).reset_index()  # fmt: skip
    out[C.MEAN_TIME_PER_SESSION] = out[C.TIME] / out[C.SESSIONS]
    out[C.MEAN_TRACKS_PER_SESSION] = out[C.TRACKS] / out[C.SESSIONS]
    out[C.MEAN_REQUEST_LATENCY] = out[C.LATENCY] / out[C.TRACKS].where(out[C.TRACKS] > 0)
    return out


def welch_ci(control: np.ndarray, treatment: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(difference of means T − C, lower, upper) from Welch's t, Welch–Satterthwaite df.

    scipy's interval; two arms with no variance at all have the point interval ``diff``.
    """
    diff = float(np.mean(treatment) - np.mean(control))
    if np.var(control) == 0 and np.var(treatment) == 0:
        return diff, diff, diff
    with warnings.catch_warnings():  # one constant arm: scipy warns of lost precision; the interval is exact
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_ind(treatment, control, equal_var=False).confidence_interval(level)
    return diff, float(ci.low), float(ci.high)


def _ab_row(control: np.ndarray, treatment: np.ndarray) -> dict:
    diff, lo, hi = welch_ci(control, treatment)
    mean_c = float(np.mean(control))
    # a zero control mean (e.g. latency of simulated serving) has no relative effect
    effect, lower, upper = (100 * x / mean_c if mean_c else float("nan") for x in (diff, lo, hi))
    return {
        "effect": effect, "upper": upper, "lower": lower, "control_mean": mean_c,
        "treatment_mean": float(np.mean(treatment)), "significant": bool(lower > 0 or upper < 0),
    }  # fmt: skip


def ab_table(
    metrics_by_user: pd.DataFrame,
    control: str = CONTROL,
    model_names: Mapping[str, str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> pd.DataFrame:
    """One row per treatment arm × metric: model, metric, effect, upper, lower, control_mean,
    treatment_mean, significant (effect and bounds in % of the control mean; 95% Welch CI).

    ``metrics_by_user`` is :func:`user_metrics` output; ``model_names`` maps arm → label
    (defaults to the arm name). Treatment arms are every arm except ``control``, sorted.
    """
    arms = sorted(set(metrics_by_user[C.ARM]) - {control})
    if control not in set(metrics_by_user[C.ARM]):
        raise ValueError(f"control arm {control!r} not found; arms: {sorted(set(metrics_by_user[C.ARM]))}")
    by_arm = {arm: frame for arm, frame in metrics_by_user.groupby(C.ARM)}
    rows = []
    for arm in arms:
        for metric in metrics:
            c = by_arm[control][metric].dropna().to_numpy(dtype=np.float64)
            t = by_arm[arm][metric].dropna().to_numpy(dtype=np.float64)
            name = (model_names or {}).get(arm, arm)
            rows.append({"model": name, "metric": metric, **_ab_row(c, t)})
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def srm_check(
    counts_by_arm: Mapping[str, int] | pd.Series,
    expected_shares: Mapping[str, float] | None = None,
    alpha: float = SRM_ALPHA,
) -> tuple[float, float]:
    """Chi-square sample-ratio test of arm counts against designed shares (default: equal).

    Returns ``(chi2, p)`` and emits :class:`SampleRatioMismatchWarning` when ``p < alpha``.
    """
    arms = list(counts_by_arm.keys())
    observed = np.array([counts_by_arm[a] for a in arms], dtype=np.float64)
    shares = np.array([1.0 if expected_shares is None else expected_shares[a] for a in arms])
    expected = observed.sum() * shares / shares.sum()
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(chi2, df=len(arms) - 1))
    if p < alpha:
        warnings.warn(
            f"sample ratio mismatch: counts {dict(zip(arms, observed.astype(int).tolist()))}, "
            f"chi2={chi2:.1f}, p={p:.2g}",
            SampleRatioMismatchWarning,
            stacklevel=2,
        )
    return chi2, p


def check_srm(sessions: pd.DataFrame, label: str = "", file: TextIO | None = None, counts: bool = True) -> float:
    """Sample-ratio check of a session table's users against botify's equal split; returns p.

    Prints the users per arm (with ``counts``) and, on a mismatch, one ``WARNING`` line to
    ``file`` (stderr by default): a mismatch is reported, not raised, since the table is still
    a valid record, only not to be trusted.
    """
    file = file or sys.stderr
    per_arm = sessions.drop_duplicates(C.USER)[C.ARM].value_counts().sort_index()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SampleRatioMismatchWarning)
        chi2, p = srm_check(per_arm.to_dict())
    if counts:
        print(f"users per arm: {per_arm.to_dict()}  (sample-ratio χ² = {chi2:.2f}, p = {p:.3g})", file=file)
    for warning in caught:
        print(f"WARNING{' ' + label if label else ''}: {warning.message}", file=file, flush=True)
    return p


@dataclass(frozen=True)
class PairedResult:
    """Paired lift of mean_time_per_session, in % of the control mean, with a 95% CI."""

    effect: float
    lower: float
    upper: float
    control_mean: float
    treatment_mean: float
    n_users: int
    significant: bool


def _user_mean_time(sessions: pd.DataFrame) -> pd.Series:
    g = sessions.groupby(C.USER)[C.TIME]
    return g.sum() / g.size()


def paired_lift(control_sessions: pd.DataFrame, treatment_sessions: pd.DataFrame) -> PairedResult:
    """Paired lift of user-level mean_time_per_session, treatment vs control.

    Both session tables come from one seed with common random numbers, so the same users
    appear in both; users are paired by id (users in only one table are dropped). With x, y the
    paired control and treatment values and R = ȳ / x̄, the delta method gives
    Var(R) ≈ Var(y − R·x) / (n · x̄²) (this is the covariance form
    (Var y − 2R Cov(x, y) + R² Var x) / (n x̄²), computed without cancellation);
    effect = (R − 1) · 100 and the CI is effect ± z₀.₉₇₅ · 100 · √Var(R).
    """
    pair = pd.concat(
        {"x": _user_mean_time(control_sessions), "y": _user_mean_time(treatment_sessions)}, axis=1, join="inner"
    )
    n = len(pair)
    if n < 2:
        raise ValueError(f"paired_lift needs at least 2 users in both tables, got {n}")
    x, y = pair["x"].to_numpy(dtype=np.float64), pair["y"].to_numpy(dtype=np.float64)
    mean_x, mean_y = float(x.mean()), float(y.mean())
    ratio = mean_y / mean_x
    se = math.sqrt(np.var(y - ratio * x, ddof=1) / n) / mean_x
    effect = 100 * (ratio - 1)
    lower, upper = effect - 100 * Z95 * se, effect + 100 * Z95 * se
    return PairedResult(effect, lower, upper, mean_x, mean_y, n, bool(lower > 0 or upper < 0))


def to_markdown(table: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """A plain pipe table (header, ``---`` rule, one line per row); floats as ``floatfmt``."""

    def cell(value: object) -> str:
        if isinstance(value, (float, np.floating)) and not isinstance(value, bool):
            return format(float(value), floatfmt)
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a table atomically: ``.csv`` → CSV (no index), ``.md`` → :func:`to_markdown`."""
    suffix = Path(path).suffix
    if suffix == ".csv":
        atomic_write_text(path, table.to_csv(index=False))
    elif suffix == ".md":
        atomic_write_text(path, to_markdown(table))
    else:
        raise ValueError(f"write_table: unsupported suffix {suffix!r} (use .csv or .md)")


def analyze(
    events: pd.DataFrame,
    experiment: str,
    control: str = CONTROL,
    model_names: Mapping[str, str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> pd.DataFrame:
    """The course's A/B table from botify events: sessionize → user_metrics → ab_table.

    Arms are ``experiments[experiment]`` of each session's first event; sessions with no arm
    in this experiment are left out.
    """
    sessions = sessionize(events, experiment)
    sessions = sessions[sessions[C.ARM] != ""]
    return ab_table(user_metrics(sessions), control=control, model_names=model_names, metrics=metrics)


# --------------------------------------------------------------------------- the seed's A/B: a treatment vs sticky_artist, unpaired
# One simulated experiment: botify assigns each user to arm C (control, sticky_artist) or T1 (the
# treatment) by murmurhash of the experiment name and the user, 50/50; each arm serves its own
# sessions (no common random numbers, unlike the search's paired objective). Shared by
# ``search.confirm`` and ``search.seed_table``.

# The course's metrics (the seed's table); latency is 0 for simulated serving, so it is left out.
COURSE_METRICS = (C.TIME, C.SESSIONS, C.MEAN_TRACKS_PER_SESSION, C.MEAN_TIME_PER_SESSION)
CONTROL_NAME = "sticky_artist"


def unpaired_ab(world: World, treatment: Policy, experiment: str, n_sessions: int, seed: int,
                label: str) -> pd.DataFrame:
    """A fresh A/B of ``treatment`` (arm T1) vs sticky_artist (arm C) → one row per course metric.

    ``experiment`` names the botify experiment (it drives the user assignment); ``seed`` drives
    the simulation. A sample-ratio mismatch is printed, not raised (the table is still valid
    as a record, but should not be trusted).
    """
    t0 = time.perf_counter()
    arms = [StickyArtist(world.catalog), treatment]
    res = simulate_experiment(Simulator(world), arms, experiment, n_sessions, seed)
    check_srm(res.sessions, label=experiment, file=sys.stdout, counts=False)
    table = ab_table(user_metrics(res.sessions), control="C", model_names={"T1": label}, metrics=COURSE_METRICS)
    row = table[table["metric"] == C.MEAN_TIME_PER_SESSION].iloc[0]
    print(f"  {label}: mean_time_per_session {row['effect']:+.2f}% [{row['lower']:+.2f}, {row['upper']:+.2f}] "
          f"(control {row['control_mean']:.3f}, treatment {row['treatment_mean']:.3f}), "
          f"{n_sessions} sessions, seed {seed}, {time.perf_counter() - t0:.1f}s", flush=True)
    return table


# --------------------------------------------------------------------------- the paired objective of a search
# Both policies run on the same simulated sessions (``Simulator.run`` with one seed gives the same
# users, session starts and per-step draws to any policy: common random numbers), so the paired
# lift is far less noisy than an unpaired A/B. The sticky_artist control is simulated once per
# search and its sessions table is shared with every trial. A winner is still confirmed later by
# a fresh, unpaired A/B (``search.confirm``).

def paired_eval(world: World, control: pd.DataFrame, policy: Policy, seed: int,
                simulator: Simulator | None = None) -> dict:
    """Serve ``policy`` (the trial's recommendations) on the control's sessions; lift in %.

    ``simulator``: one of ``world`` to reuse (its start table is built once per instance).
    """
    n_sessions = len(control)  # one row per session
    treatment = (simulator or Simulator(world, SimConfig())).run(policy, n_sessions, seed)
    res = paired_lift(control, treatment.sessions)
    return {
        "time_per_session": float(res.treatment_mean),
        "control_time_per_session": float(res.control_mean),
        "lift_vs_sticky": float(res.effect),
        "lift_lower": float(res.lower),
        "lift_upper": float(res.upper),
        "lift_significant": bool(res.significant),
        "truncated_share": float(treatment.truncated_share),
    }


# --------------------------------------------------------------------------- calibration: the baselines on a world


# The course's table on its real world (docs/seed.md): mean time per session.
TARGETS = {"random": 2.05, "sticky_artist": 2.99, "toppop": 2.12}


def measure_baselines(world: World, n_sessions: int, seed: int) -> dict[str, dict[str, float]]:
    """User-level mean time and tracks per session (± SE) of each baseline, paired sessions.

    TopPop serves the world's logged ``top_tracks`` when it has them (botify's rule), else the
    catalog's pop (reported as ``toppop_catalog``)."""
    sim = Simulator(world)
    policies = [Random(world.catalog.n_tracks), StickyArtist(world.catalog), TopPop(world.catalog, top=world.top_tracks)]
    out = {}
    for policy in policies:
        users = user_metrics(sim.run(policy, n_sessions, seed).sessions)
        time, tracks = users[C.MEAN_TIME_PER_SESSION], users[C.MEAN_TRACKS_PER_SESSION]
        out[policy.name] = {
            "time": float(time.mean()),
            "time_se": float(time.std(ddof=1) / np.sqrt(len(time))),
            "tracks": float(tracks.mean()),
            "tracks_se": float(tracks.std(ddof=1) / np.sqrt(len(tracks))),
            "off_pct": float(100 * (time.mean() / TARGETS[policy.name.removesuffix("_catalog")] - 1)),
        }
    return out
