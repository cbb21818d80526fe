"""The course's A/B analysis (docs/ab_test.md), a sample-ratio check and a paired lift for the search.

Unpaired (the course's method): per-user metrics, per-arm means, effect in % of the control
mean, 95% CI from Welch's t with Welch–Satterthwaite degrees of freedom on the difference of
means, divided by the control mean. Paired (the search objective): the same users under both
policies with common random numbers, CI by the delta method on the ratio of paired means.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sim_bridge import columns as C
from sim_bridge.atomic import atomic_write_text
from sim_bridge.logs import sessionize

CONTROL = "C"
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
    """(difference of means T − C, lower, upper) from Welch's t, Welch–Satterthwaite df."""
    nc, nt = len(control), len(treatment)
    vc, vt = np.var(control, ddof=1) / nc, np.var(treatment, ddof=1) / nt
    diff = float(np.mean(treatment) - np.mean(control))
    se = math.sqrt(vc + vt)
    if se == 0:
        return diff, diff, diff
    df = (vc + vt) ** 2 / (vc**2 / (nc - 1) + vt**2 / (nt - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return diff, diff - half, diff + half


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
