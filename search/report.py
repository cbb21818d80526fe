"""A report per experiment: ``python -m search.report EXPERIMENT_DIR [--out DIR] [--ab-table CSV ...]``.

Writes ``report.md`` with PNG plots beside it and a self-contained ``report.html`` (images as
base64 data URIs, inline CSS, no scripts) to ``--out`` (default ``EXPERIMENT_DIR/report/``):
optimization history, the time to target (best lift so far vs wall clock, stopped trials
marked), why the trials ended (counts per ``stop_reason``), how well the rung lifts predicted the
final lift (Spearman per rung), Optuna's
parameter importances (with a warning when there are too few trials for them to mean much), parallel coordinates, validation loss vs
lift (the Pareto front in ``multi`` mode), a forest plot of A/B effects on mean time per session
(``confirm/confirm.csv`` of ``search.confirm`` plus each ``--ab-table`` in the same columns, e.g.
the seed variants of ``search.seed_table``), the best trial's training curves and the top-10
table. A missing optional input leaves a note in its section. The folder is written atomically
(a temp folder renamed into place); an existing one is kept unless ``--force``.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from scipy import stats

from sim_bridge.contract.files import ConfigError, atomic_dir, atomic_write_text, check_output_dir

from search import errors, experiment, plots, trials
from search.config import Objective, load_search_config
from search.plots import Section, render_html, render_markdown
from search.space import on_grid, parse_space, to_optuna
from search.timeline import LIFT, best_at, time_to, timeline

AB_COLUMNS = ("model", "metric", "effect", "upper", "lower", "significant")
AB_METRIC = "mean_time_per_session"
TOP_COLUMNS = ["trial_id", "stop_reason", "score", "lift_vs_sticky", "lift_lower", "lift_upper", "time_per_session",
               "val_loss", "epoch", "duration_s"]


class ReportError(errors.SearchError):
    """A user-facing problem with the inputs (printed without a traceback)."""


# ---------------------------------------------------------------- inputs


def load_experiment(exp_dir: Path) -> tuple[pd.DataFrame, dict, Objective]:
    """(trials.parquet, search_run.json settings or {}, the run's objective)."""
    if not (exp_dir / experiment.TRIALS_FILE).is_file():
        raise ReportError(f"{exp_dir} has no {experiment.TRIALS_FILE} (not a finished search.run experiment?)")
    settings = experiment.read_run_file(exp_dir)
    return trials.load_trials(exp_dir), settings, experiment.run_objective(settings)


def finished(frame: pd.DataFrame, obj: Objective, exp_dir: Path) -> pd.DataFrame:
    """Finished trials with finite objective values, in completion order (last report's timestamp)."""
    metrics = obj.metric if obj.multi else [obj.metric]
    done = frame[frame["status"] == "finished"].copy()
    done = done[np.isfinite(done[metrics].astype(float)).all(axis=1)]
    ends = []
    for _, row in done.iterrows():
        res = trials.trial_results(trials.trial_dir(row, exp_dir))
        ends.append(float(res["timestamp"].iloc[-1]) if "timestamp" in res and len(res) else math.inf)
    return done.assign(_end=ends).sort_values(["_end", "trial_id"], kind="stable").drop(columns="_end")


def space_distributions(settings: dict, frame: pd.DataFrame) -> tuple[dict, list[str]]:
    """Optuna distributions of the sampled keys (from the run's search config via
    :func:`search.space.to_optuna`), widened to hold every value the trials actually took
    (the YAML may have changed since the run); inferred from the values when it is unreadable."""
    notes, sampled = [], {c.removeprefix("config/") for c in frame.columns if c.startswith("config/")}
    try:
        dists = to_optuna(parse_space(load_search_config(settings["config"]).space))
    except (KeyError, OSError, ConfigError) as exc:
        notes.append(f"Search space not readable ({exc}); distributions inferred from the trials' values.")
        dists = {k: _inferred(frame[f"config/{k}"]) for k in sorted(sampled - {"seed"})}
    out = {}
    for key, dist in dists.items():
        if key in sampled:
            out[key] = _widened(dist, frame[f"config/{key}"].dropna())
    return out, notes


def _inferred(values: pd.Series) -> optuna.distributions.BaseDistribution:
    values = values.dropna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return optuna.distributions.FloatDistribution(float(values.min()), float(values.max()) + 1e-12)
    return optuna.distributions.CategoricalDistribution(sorted({str(v) for v in values}))


def _widened(dist, values: pd.Series):
    od = optuna.distributions
    if isinstance(dist, od.CategoricalDistribution):
        known = {str(c) for c in dist.choices}
        extra = sorted({str(v) for v in values} - known)
        return od.CategoricalDistribution(list(dist.choices) + extra) if extra else dist
    if values.empty or (values.min() >= dist.low and values.max() <= dist.high
                        and all(on_grid(v, dist.low, dist.step) for v in values)):
        return dist  # else widened, and without a step: the trials took values off the grid
    low, high = min(dist.low, values.min()), max(dist.high, values.max())
    if isinstance(dist, od.IntDistribution):
        return od.IntDistribution(int(low), int(high), log=dist.log)
    return od.FloatDistribution(float(low), float(high), log=dist.log)


def param_value(dist, value):
    """A trials.parquet cell as the distribution's value (categoricals matched by their text)."""
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return next(c for c in dist.choices if str(c) == str(value))
    return int(value) if isinstance(dist, optuna.distributions.IntDistribution) else float(value)


def varying(done: pd.DataFrame, dists: dict) -> list[str]:
    """The sampled keys that took more than one value among ``done``."""
    return [k for k in dists if done[f"config/{k}"].astype(str).nunique() > 1]


def ab_rows(path: Path, source: str) -> pd.DataFrame:
    """Rows of an A/B table (the seed's columns) for mean time per session, labelled by ``source``."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read A/B table {path}: {exc}") from None
    missing = [c for c in AB_COLUMNS if c not in table]
    if missing:
        raise ReportError(f"A/B table {path} lacks columns {missing} (expected {', '.join(AB_COLUMNS)})")
    table = table[table["metric"] == AB_METRIC].copy()
    table["significant"] = table["significant"].astype(str).str.lower() == "true"
    table["label"] = [f"{source}: {m}" for m in table["model"]]
    return table[["label", "model", "effect", "lower", "upper", "significant"]]


# ---------------------------------------------------------------- rung lifts


def rung_correlations(frame: pd.DataFrame) -> pd.DataFrame:
    """rung epoch, trials, Spearman rho and its p-value, rung vs final lift (finished trials)."""
    done = frame[frame["status"] == "finished"]
    rows = []
    cols = sorted((c for c in frame.columns if c.startswith("rung_lift_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    for col in cols:
        pair = done[[col, LIFT]].dropna()
        rho, p = (stats.spearmanr(pair[col], pair[LIFT]) if len(pair) >= 3 and pair[col].nunique() > 1
                  else (math.nan, math.nan))
        rows.append({"rung_epoch": int(col.rsplit("_", 1)[1]), "trials": len(pair),
                     "spearman": float(rho), "p_value": float(p)})
    return pd.DataFrame(rows, columns=["rung_epoch", "trials", "spearman", "p_value"])


# ---------------------------------------------------------------- sections


def history_section(done: pd.DataFrame, obj: Objective, out: Path) -> Section:
    s = Section("Optimization history", [])
    if done.empty:
        s.notes.append("No finished trial with an objective value.")
        return s
    metrics, modes = (obj.metric, obj.mode) if obj.multi else ([obj.metric], [obj.mode])
    plots.history(done[["trial_id", *metrics]], dict(zip(metrics, modes)), out / "history.png")
    s.image = "history.png"
    s.notes.append(f"Objective of each of the {len(done)} finished trials in completion order, and the running best.")
    return s


TARGET_LIFT = 100.0  # %: the service's goal, twice sticky_artist's time per session
MIN_TRIALS_PER_PARAM = 5  # below this many finished trials per varying parameter importances are noise


def time_section(frame: pd.DataFrame, settings: dict, out: Path) -> Section:
    s = Section("Time to target", [])
    line = timeline(frame, settings.get("started_at"))
    if line.empty:
        s.notes.append("No trial reported a timestamp.")
        return s
    plots.time_to_target(line, TARGET_LIFT, out / "time_to_target.png")
    s.image = "time_to_target.png"
    reached = time_to(line, TARGET_LIFT)
    marks = ", ".join(f"{m} min: {best_at(line, 60 * m):+.1f}%" for m in (10, 20, 30))
    s.notes.append(f"Best finished paired lift by wall clock ({marks}); "
                   + (f"{TARGET_LIFT:+.0f}% first reached after {reached / 60:.1f} min." if math.isfinite(reached)
                      else f"{TARGET_LIFT:+.0f}% not reached.")
                   + f" {int((line['status'] == 'stopped').sum())} trials stopped early (crosses).")
    return s


def rung_section(frame: pd.DataFrame) -> Section:
    s = Section("Rung lift vs final lift", [])
    table = rung_correlations(frame)
    if table.empty:
        s.notes.append("No rung lifts recorded (multi-fidelity off, or no finished trial).")
        return s
    s.notes.append("Spearman correlation, over finished trials, between the lift measured at each rung "
                   "(a few thousand sessions of the rung seed) and the final paired lift (evaluation seed).")
    s.table = table.rename(columns={"rung_epoch": "rung (epoch)", "p_value": "p"})
    return s


def stop_section(frame: pd.DataFrame) -> Section:
    """Counts per stop reason (``trials.parquet``'s ``stop_reason``), with the epochs trained and
    the trial time each reason accounts for."""
    s = Section("Why trials ended", [])
    if "stop_reason" not in frame or frame["stop_reason"].isna().all():
        s.notes.append("No stop reasons recorded (a run made before `stop_reason` existed).")
        return s
    reasons = trials.reason_counts(frame)
    rows = []
    for reason, n in reasons.items():
        part = frame[frame["stop_reason"] == reason]
        epochs = part["epoch"].astype(float) if "epoch" in part else pd.Series(dtype=float)
        rows.append({"stop_reason": reason, "trials": n,
                     "mean epochs": float(epochs.mean()) if epochs.notna().any() else math.nan,
                     "trial time (min)": float(part["duration_s"].astype(float).sum()) / 60})
    missing = int(frame["stop_reason"].isna().sum())
    s.notes.append("`rung_plateau`: the rung lift stopped improving; `early_stopping`: the validation loss did "
                   "not beat its best by `train.min_delta` for `train.patience` epochs; `max_epochs`: trained to "
                   "the end (or the last rung); `asha`: ASHA stopped it at a rung; `error`: it raised."
                   + (f" {missing} trials without a reason (running, pending, or ended by the time budget)."
                      if missing else ""))
    s.table = pd.DataFrame(rows)
    return s


def importance_section(done: pd.DataFrame, obj: Objective, dists: dict, out: Path) -> Section:
    s = Section("Parameter importances", [])
    keys = varying(done, dists)
    if len(done) < 2 or not keys:
        s.notes.append(f"Skipped: {len(done)} finished trial(s), {len(keys)} varying parameter(s); "
                       "importances need at least 2 of each.")
        return s
    metrics, modes = (obj.metric, obj.mode) if obj.multi else ([obj.metric], [obj.mode])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = {}
    for metric, mode in zip(metrics, modes):
        study = optuna.create_study(direction="minimize" if mode == "min" else "maximize")
        for _, row in done.iterrows():
            params = {k: param_value(d, row[f"config/{k}"]) for k, d in dists.items() if pd.notna(row[f"config/{k}"])}
            study.add_trial(optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                                      value=float(row[metric])))
        try:
            # PED-ANOVA: Optuna's default evaluator, deterministic, needs no scikit-learn (fANOVA does)
            evaluator = optuna.importance.PedAnovaImportanceEvaluator()
            table[metric] = optuna.importance.get_param_importances(study, evaluator=evaluator, params=keys)
        except (RuntimeError, ValueError, ImportError) as exc:
            s.notes.append(f"`{metric}`: importances not computable ({exc}).")
    constant = sorted(set(dists) - set(keys))
    if constant:
        s.notes.append(f"Constant across finished trials (left out): {', '.join(f'`{k}`' for k in constant)}.")
    if table:
        plots.importances(table, out / "importances.png")
        s.image = "importances.png"
        # the same numbers as text, every varying key (train.min_delta among them) side by side
        s.table = pd.DataFrame({"parameter": keys, **{f"importance ({m})": [imp.get(k, math.nan) for k in keys]
                                                       for m, imp in table.items()}})
        s.table = s.table.sort_values(s.table.columns[1], ascending=False, ignore_index=True)
        s.notes.insert(0, f"PED-ANOVA (Optuna's default evaluator) over {len(done)} finished trials; the Optuna study is rebuilt "
                          "from `trials.parquet` with the search space's distributions.")
        if len(done) < MIN_TRIALS_PER_PARAM * len(keys):
            s.notes.insert(0, f"Too few trials for these importances to mean much: {len(done)} finished trials for "
                              f"{len(keys)} varying parameters (want at least {MIN_TRIALS_PER_PARAM} per parameter, "
                              f"{MIN_TRIALS_PER_PARAM * len(keys)}); read them as noise.")
    return s


def _axis(dist, values: pd.Series) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Values mapped to [0, 1] on the distribution's scale, and the axis' tick texts."""
    od = optuna.distributions
    if isinstance(dist, od.CategoricalDistribution):
        names = [str(c) for c in dist.choices]
        span = max(1, len(names) - 1)
        return values.astype(str).map(names.index).to_numpy(float) / span, [(i / span, n) for i, n in enumerate(names)]
    low, high, v = float(dist.low), float(dist.high), values.to_numpy(float)
    if dist.log:
        low, high, v = np.log10(low), np.log10(high), np.log10(v)
    ticks = [(0.0, f"{dist.low:.3g}"), (1.0, f"{dist.high:.3g}")]
    return (v - low) / (high - low), ticks


def parallel_section(done: pd.DataFrame, obj: Objective, dists: dict, best_id: str, out: Path) -> Section:
    s = Section("Parallel coordinates", [])
    keys = varying(done, dists)
    if len(done) < 2 or not keys:
        s.notes.append("Skipped: needs at least 2 finished trials and 1 varying parameter.")
        return s
    done = done.dropna(subset=[f"config/{k}" for k in keys])
    axes, ticks = {}, {}
    for k in keys:
        axes[k], ticks[k] = _axis(dists[k], done[f"config/{k}"])
    for metric in (obj.metric if obj.multi else [obj.metric]):
        v = done[metric].to_numpy(float)
        lo, hi = v.min(), v.max()
        axes[metric] = (v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5)
        ticks[metric] = [(0.0, f"{lo:.4g}"), (1.0, f"{hi:.4g}")]
    best = int(np.flatnonzero(done["trial_id"].to_numpy() == best_id)[0])
    plots.parallel_coordinates(pd.DataFrame(axes), ticks, list(axes)[-1], best, out / "parallel.png")
    s.image = "parallel.png"
    s.notes.append(f"{len(done)} finished trials; each axis spans the search space's range (log scale for "
                   "log-uniform keys); categoricals at evenly spaced codes; the objective axis spans the observed values.")
    return s


def loss_lift_section(done: pd.DataFrame, obj: Objective, best_id: str, out: Path) -> Section:
    s = Section("Validation loss vs lift", [])
    cols = ["val_loss", "lift_vs_sticky", "lift_lower", "lift_upper", "time_per_session"]
    done = done[np.isfinite(done[cols].astype(float)).all(axis=1)]
    if done.empty or best_id not in set(done["trial_id"]):
        s.notes.append("No finished trial with both a validation loss and a lift.")
        return s
    pareto = trials.pareto_mask(done["val_loss"].to_numpy(float), done["time_per_session"].to_numpy(float)) \
        if obj.multi else None
    best = int(np.flatnonzero(done["trial_id"].to_numpy() == best_id)[0])
    plots.loss_vs_lift(done, pareto, best, out / "loss_vs_lift.png")
    s.image = "loss_vs_lift.png"
    s.notes.append("Lift = paired simulated A/B vs sticky_artist on the search's evaluation sessions (95% CI)."
                   + (f" Pareto front: {int(pareto.sum())} trials." if pareto is not None else ""))
    return s


def forest_section(exp_dir: Path, ab_tables: list[Path], out: Path) -> Section:
    s = Section("A/B effects (forest plot)", [])
    parts = []
    confirm = exp_dir / "confirm" / "confirm.csv"
    if confirm.is_file():
        parts.append(ab_rows(confirm, "winner"))
    else:
        s.notes.append(f"No `confirm/confirm.csv` (run `python -m search.confirm {exp_dir}`): search winners not shown.")
    parts += [ab_rows(p, p.stem) for p in ab_tables]
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if rows.empty:
        s.notes.append("No A/B rows for `mean_time_per_session` to plot.")
        return s
    plots.forest(rows, out / "forest.png")
    s.image, s.table = "forest.png", rows.drop(columns="label")
    s.notes.append("Unpaired A/B vs sticky_artist, effect on mean time per session in % of control with 95% "
                   f"Welch CI; green = significant. Sources: {', '.join(dict.fromkeys(r.split(':')[0] for r in rows['label']))}.")
    return s


def curves_section(best: pd.Series | None, exp_dir: Path, out: Path) -> Section:
    s = Section("Training curves of the best trial", [])
    if best is None:
        s.notes.append("No finished trial.")
        return s
    res = trials.trial_results(trials.trial_dir(best, exp_dir))
    if "final" in res:
        res = res[res["final"].astype(str).str.lower() == "false"]
    cols = [c for c in ("epoch", "train_loss", "val_loss", "lr") if c in res]
    if res.empty or "epoch" not in cols:
        s.notes.append(f"No per-epoch reports found for trial {best['trial_id']} in {trials.trial_dir(best, exp_dir)}.")
        return s
    plots.training_curves(res[cols], f"Trial {best['trial_id']}: per-epoch losses and learning rate",
                          out / "training_curves.png")
    s.image = "training_curves.png"
    s.notes.append(f"Trial `{best['trial_id']}`, {len(res)} epochs (from its Tune folder).")
    return s


def top_section(frame: pd.DataFrame, obj: Objective) -> Section:
    best = trials.ranked(frame, obj).head(10)
    if best.empty:
        return Section("Top 10 trials", ["No finished trials."])
    cols = TOP_COLUMNS + (["pareto"] if obj.multi else []) + [c for c in best.columns if c.startswith("config/")]
    table = best[[c for c in cols if c in best.columns]].rename(columns=lambda c: c.removeprefix("config/"))
    return Section("Top 10 trials", [f"Finished trials ranked by `{obj.metric}` ({obj.mode})."], table=table)


# ---------------------------------------------------------------- output


def build(exp_dir: Path, out: Path, ab_tables: list[Path] = (), force: bool = False) -> Path:
    """Write report.md, report.html and the PNGs to the folder ``out`` (atomically; an existing
    non-empty ``out`` only with ``force``); return the path of report.md."""
    check_output_dir(out, force, keep=(exp_dir,))
    frame, settings, obj = load_experiment(exp_dir)
    with atomic_dir(out, force=force, keep=(exp_dir,)) as tmp:
        _write_report(exp_dir, tmp, frame, settings, obj, ab_tables)
    return out / "report.md"


def _write_report(exp_dir: Path, out: Path, frame: pd.DataFrame, settings: dict, obj: Objective,
                  ab_tables: list[Path]) -> None:
    done = finished(frame, obj, exp_dir)
    ranked = trials.ranked(frame, obj)
    best = ranked.iloc[0] if not ranked.empty else None
    best_id = best["trial_id"] if best is not None else None
    dists, notes = space_distributions(settings, frame)
    counts = frame["status"].value_counts().to_dict()
    intro = [f"Experiment `{exp_dir}`; objective `{settings.get('objective', 'score')}` "
             f"(`{obj.metric}`, {obj.mode}){'; smoke test' if settings.get('smoke_test') else ''}.",
             "", f"Trials: {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}."
             + (f" Best: `{best_id}`." if best_id else ""), *notes]
    sections = [history_section(done, obj, out), time_section(frame, settings, out), stop_section(frame),
                rung_section(frame),
                importance_section(done, obj, dists, out),
                parallel_section(done, obj, dists, best_id, out), loss_lift_section(done, obj, best_id, out),
                forest_section(exp_dir, list(ab_tables), out), curves_section(best, exp_dir, out),
                top_section(frame, obj)]
    title = f"Search report: {exp_dir.name}"
    atomic_write_text(out / "report.md", render_markdown(title, intro, sections))
    atomic_write_text(out / "report.html", render_html(title, intro, sections, out))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m search.report", description=__doc__.splitlines()[0])
    p.add_argument("experiment_dir", type=Path)
    p.add_argument("--out", type=Path, default=None, help="output folder (default EXPERIMENT_DIR/report)")
    p.add_argument("--ab-table", type=Path, action="append", default=[],
                   help="extra A/B table in the seed's columns for the forest plot (repeatable)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder as a whole")
    args = p.parse_args(argv)
    exp_dir = args.experiment_dir.resolve()
    try:
        if not exp_dir.is_dir():
            raise ReportError(f"{exp_dir}: no such experiment folder")
        md = build(exp_dir, (args.out or exp_dir / "report").resolve(), args.ab_table, args.force)
    except errors.USER_ERRORS as exc:
        return errors.report(exc)
    print(f"report: {md}, {md.with_suffix('.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
