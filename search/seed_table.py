"""Reproduce the seed's table: ``python -m search.seed_table --out DIR [--variants a,b] [--smoke]``.

Trains each of the nine variants of ``configs/seed_variants.yaml`` (every one: train.yaml →
``seminar:`` → the variant's keys) on the default logs (or ``--logs``), serves its lists as the
seed did (indexed: uniform from the user's top-100) and A/B-tests it against sticky_artist the
way the seed did (:mod:`sim_bridge.abtest`: botify assignment in experiment ``seed-<variant>``, 50/50,
unpaired, 8,000 sessions; simulation seed ``--seed`` + the variant's index).

Writes ``DIR/seed_table.csv`` (the seed's columns, the course's four metrics per variant) and
``DIR/seed_table.md`` (mean_time_per_session per variant beside the seed's published numbers,
with each variant's best val loss, epochs and training seconds); both are rewritten after every
variant, so a long run leaves a partial table. Existing outputs are kept unless ``--force``.
``--train-seed N``: every row trained again with ``features.seed`` and ``train.seed`` N, A/B-tested
on simulation seed ``--seed`` + 1000·N + index (fresh sessions, so trainings pool as independent
measurements) — how far one training moves a row. ``--pool DIR DIR ...``: no training; the tables of
several such runs averaged row by row into ``OUT/seed_table_pooled.md`` (mean effect, its CI, each
training's effect, the Spearman correlation of the rows with the seed's, with and without row 2).
``--smoke``: the tiny world and its logs, ``seed_table:`` of ``configs/smoke.yaml`` laid over every variant —
seconds, for CI. Each variant is trained and served by :func:`search.trial.run_trial` (no rungs,
no serving search, no paired A/B: the seed's unpaired one instead).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from model.config import load_experiment_config, read_variants
from model.features import build_training_data
from model.train import print_epoch
from sim_bridge.contract import columns as C
from sim_bridge.abtest import unpaired_ab, write_table
from sim_bridge.contract.files import ConfigError, atomic_write_text, with_overrides
from sim_bridge.world import World, load_world

from search import errors
from search.config import load_smoke
from search.trial import TrialInputs, TrialSetup, run_trial

REPO = Path(__file__).resolve().parent.parent
TRAIN_CONFIG = REPO / "configs" / "train.yaml"
VARIANTS_FILE = REPO / "configs" / "seed_variants.yaml"
OUTPUTS = ("seed_table.csv", "seed_table.md")
POOLED = "seed_table_pooled.md"
DEFAULT_SEED = 808_000
TRAIN_SEED_STRIDE = 1000  # a training seed's A/Bs start this far apart, so no two trainings share sessions

# The seed's published A/B results, docs/seed.md: treatment vs StickyArtist,
# mean_time_per_session, effect % and 95% CI %, control mean ~2.97. Keyed by the variant names of
# configs/seed_variants.yaml, in the table's order (#1..#9).
SEED_PUBLISHED: dict[str, tuple[float, float, float]] = {
    "dssm": (-8.71, -11.62, -5.79),
    "l2_normalize": (-18.33, -22.04, -14.61),
    "layernorm": (-4.81, -9.48, -0.14),
    "layernorm_h64_wd": (-2.41, -7.05, 2.24),
    "layernorm_h64_wd_50ep": (-6.06, -10.62, -1.50),
    "min_delta_emb96": (-2.97, -5.86, -0.08),
    "lr_scheduler_emb96": (0.70, -4.18, 5.57),
    "lr_scheduler_emb64": (-1.85, -5.55, 1.84),
    "dense_block_emb64": (1.64, -3.45, 6.73),
}


@dataclass
class VariantRun:
    """One variant's training record and its A/B rows."""

    name: str
    best_val_loss: float
    epochs: int
    seconds: float
    table: pd.DataFrame

    @property
    def headline(self) -> pd.Series:
        """The A/B's mean_time_per_session row (effect, lower, upper, ...)."""
        return self.table[self.table["metric"] == C.MEAN_TIME_PER_SESSION].iloc[0]


def variant_config(name: str, smoke: bool, train_seed: int | None = None):
    """train.yaml → seminar → the variant; indexed serving as the seed; smoke: configs/smoke.yaml's;
    ``train_seed``: another training (data split, negatives, weight init, batch order) of the row."""
    cfg = load_experiment_config(TRAIN_CONFIG, variant=name, variants_path=VARIANTS_FILE)
    cfg = replace(cfg, serving=replace(cfg.serving, policy="indexed"))
    if train_seed is not None:
        cfg = with_overrides(cfg, {"features.seed": train_seed, "train.seed": train_seed})
    return with_overrides(cfg, load_smoke().seed_table.overrides) if smoke else cfg


def run_variant(name: str, index: int, world: World, events: pd.DataFrame, data_cache: dict, sessions: int,
                seed: int, smoke: bool = False, device: str = "cpu", train_seed: int | None = None) -> VariantRun:
    """Train ``name`` (training data shared between variants with the same features config), A/B it
    unpaired in experiment ``seed-<name>`` on simulation seed ``seed + index`` (+ 1000 · ``train_seed``)."""
    cfg = variant_config(name, smoke, train_seed)
    key = repr(cfg.features)
    if key not in data_cache:
        data_cache[key] = build_training_data(events, world.catalog, cfg.features)
    print(f"variant {index + 1} {name}: training (max {cfg.train.max_epochs} epochs) ...", flush=True)
    out = run_trial(cfg, TrialInputs(world, data_cache[key], None, None), TrialSetup(), device=device,
                    on_epoch=print_epoch)
    m = out.metrics
    print(f"  best val loss {m['val_loss']:.4f}, {m['epoch']} epochs, {m['train_seconds']:.1f}s", flush=True)
    table = unpaired_ab(world, out.policy, f"seed-{name}", sessions, ab_seed_base(seed, train_seed) + index, name)
    return VariantRun(name, m["val_loss"], m["epoch"], m["train_seconds"], table)


def ab_seed_base(seed: int, train_seed: int | None) -> int:
    """The simulation seed a training seed's A/Bs count rows from: apart by ``TRAIN_SEED_STRIDE``."""
    return seed + TRAIN_SEED_STRIDE * (train_seed or 0)


def _fmt_ci(effect: float, lower: float, upper: float) -> str:
    return f"{effect:+.2f} [{lower:+.2f}, {upper:+.2f}]"


def markdown(runs: list[VariantRun], header: str) -> str:
    """mean_time_per_session per variant beside the seed's published numbers (docs/seed.md)."""
    order = list(SEED_PUBLISHED)
    lines = [header, "", "| # | variant | effect % [95% CI] | significant | seed's effect % [CI] | seed significant "
             "| control mean | best val loss | epochs | train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    effects = {}
    for run in runs:
        row = run.headline
        effects[run.name] = float(row["effect"])
        pub = SEED_PUBLISHED.get(run.name)
        number = order.index(run.name) + 1 if run.name in order else "-"
        seed_cells = (f"{_fmt_ci(*pub)} | {'yes' if pub[1] > 0 or pub[2] < 0 else 'no'}" if pub else "- | -")
        lines.append(f"| {number} | {run.name} | {_fmt_ci(row['effect'], row['lower'], row['upper'])} | "
                     f"{'yes' if row['significant'] else 'no'} | {seed_cells} | {row['control_mean']:.3f} | "
                     f"{run.best_val_loss:.4f} | {run.epochs} | {run.seconds:.1f} |")
    return "\n".join(lines) + "\n" + _spearman_line(effects)


def spearman_with_seed(effects: dict[str, float]) -> float | None:
    """Spearman rank correlation of the rows' effects with the seed's published ones (None below
    three rows): how close the rows' order is to the seed's."""
    names = [n for n in SEED_PUBLISHED if n in effects]
    if len(names) < 3:
        return None
    return float(stats.spearmanr([effects[n] for n in names], [SEED_PUBLISHED[n][0] for n in names]).statistic)


OUTLIER_ROW = "l2_normalize"  # row 2: the seed's L2 normalisation collapsed (-18%), a failure more than a rank


def _spearman_line(effects: dict[str, float]) -> str:
    rho = spearman_with_seed(effects)
    if rho is None:
        return ""
    line = f"\nSpearman rank correlation with the seed's effects over these rows: {rho:+.2f}"
    rest = spearman_with_seed({n: e for n, e in effects.items() if n != OUTLIER_ROW})
    if OUTLIER_ROW in effects and rest is not None:
        line += f"; without row 2 ({OUTLIER_ROW}): {rest:+.2f}"
    return line + "\n"


def read_effects(folder: Path) -> pd.Series:
    """A seed-table folder's mean_time_per_session effect % per variant."""
    path = folder / OUTPUTS[0]
    if not path.is_file():
        raise ConfigError(f"--pool {folder}: no {OUTPUTS[0]} (expected a folder written by python -m search.seed_table)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable CSV ({exc})") from None
    missing = {"model", "metric", "effect"} - set(table.columns)
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    rows = table[table["metric"] == C.MEAN_TIME_PER_SESSION]
    if rows.empty:
        raise ConfigError(f"{path}: no {C.MEAN_TIME_PER_SESSION} rows")
    return rows.set_index("model")["effect"].astype(float)


def pooled_effect(effects: list[float]) -> tuple[float, float, float]:
    """Mean of one row's effects over K trainings and its 95% CI from their spread (Student's t,
    K − 1 degrees of freedom: training noise and A/B noise together); NaN bounds for one training."""
    values = np.asarray(effects, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def pooled_markdown(folders: list[Path]) -> str:
    """Each variant's effect averaged over the trainings in ``folders`` (one seed-table run per
    training seed), with :func:`pooled_effect`'s CI, beside the seed's numbers."""
    runs = [read_effects(f) for f in folders]
    names = [n for n in SEED_PUBLISHED if any(n in r for r in runs)]
    names += sorted({n for r in runs for n in r.index} - set(names))
    lines = [f"# Seed table pooled over {len(folders)} seed-table runs", "",
             "mean_time_per_session effect % vs sticky_artist per variant, averaged over the seed-table runs "
             + ", ".join(f"`{f}`" for f in folders) + ".", "",
             "| # | variant | trainings | mean effect % [95% CI] | each training | seed's effect % [CI] "
             "| mean inside the seed's CI |", "|---|---|---|---|---|---|---|"]
    means = {}
    for name in names:
        effects = [r[name] for r in runs if name in r]
        mean, lower, upper = pooled_effect(effects)
        means[name] = mean
        cell = _fmt_ci(mean, lower, upper) if len(effects) > 1 else f"{mean:+.2f} (one training)"
        pub = SEED_PUBLISHED.get(name)
        number = list(SEED_PUBLISHED).index(name) + 1 if pub else "-"
        lines.append(f"| {number} | {name} | {len(effects)} | {cell} | "
                     f"{', '.join(f'{e:+.2f}' for e in effects)} | {_fmt_ci(*pub) if pub else '-'} | "
                     f"{('yes' if pub[1] <= mean <= pub[2] else 'no') if pub else '-'} |")
    return "\n".join(lines) + "\n" + _spearman_line(means)


def write_outputs(out: Path, runs: list[VariantRun], header: str) -> None:
    """``seed_table.csv`` (all rows, the seed's columns) and ``seed_table.md``, atomically."""
    write_table(pd.concat([r.table for r in runs], ignore_index=True), out / OUTPUTS[0])
    atomic_write_text(out / OUTPUTS[1], markdown(runs, header))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m search.seed_table", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--logs", type=Path, default=None, help="training logs (default: the built-in world's)")
    p.add_argument("--world", type=Path, default=None, help="world folder (default: the built-in world)")
    p.add_argument("--world-config", type=Path, default=None,
                   help="the built-in world's generator YAML (default configs/world.yaml; e.g. configs/world_v1.yaml)")
    p.add_argument("--sessions", type=int, default=8_000, help="A/B size in sessions (default 8000, the seed's)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"first simulation seed, +index per variant "
                                                                   f"(default {DEFAULT_SEED})")
    p.add_argument("--variants", default=None, help="comma-separated names (default: all nine)")
    p.add_argument("--train-seed", type=int, default=None,
                   help="features.seed and train.seed of every row (default: the config's, 0): another "
                        "training of the same rows on the same world, A/B-tested on fresh sessions")
    p.add_argument("--pool", type=Path, nargs="+", default=None, metavar="DIR",
                   help="no training: average the tables in these seed-table folders (one per training seed) "
                        f"into OUT/{POOLED}")
    p.add_argument("--device", default="cpu", help="training device: cpu | cuda | auto (default cpu)")
    p.add_argument("--smoke", action="store_true", help="tiny world and logs, configs/smoke.yaml's seed_table")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs in --out")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> list[str]:
    """The variants to run; refuses unknown names, bad sizes and outputs already in --out."""
    _, known = read_variants(VARIANTS_FILE)
    names = [n.strip() for n in args.variants.split(",") if n.strip()] if args.variants else list(known)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(f"unknown variant(s) {', '.join(unknown) or '(none given)'} (known: {', '.join(known)})")
    if args.sessions < 2:
        raise ConfigError(f"--sessions must be >= 2, got {args.sessions}")
    if args.train_seed is not None and args.train_seed < 0:
        raise ConfigError(f"--train-seed must be >= 0, got {args.train_seed}")
    existing = [f for f in OUTPUTS if (args.out / f).exists()]
    if existing and not args.force:
        raise ConfigError(f"{args.out} already holds {', '.join(existing)}: pass --force to overwrite")
    return names


def inputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """``--world``/``--logs`` or the built-in (smoke) world and its logs."""
    from sim_bridge import defaults

    if not args.smoke:
        defaults.use_world_config(args.world_config)
    world = args.world or Path(defaults.ensure_smoke_world() if args.smoke else defaults.ensure_default_world())
    logs = args.logs or Path(defaults.ensure_smoke_logs() if args.smoke else defaults.ensure_default_logs())
    for flag, path in (("--world", world), ("--logs", logs)):
        if not path.exists():
            raise ConfigError(f"{flag} {path}: not found")
    return Path(world), Path(logs)


def pool(args: argparse.Namespace) -> Path:
    """``--pool``: the pooled table of several seed-table runs, written atomically; returns its path."""
    text = pooled_markdown(args.pool)
    target = args.out / POOLED
    if target.exists() and not args.force:
        raise ConfigError(f"{args.out} already holds {POOLED}: pass --force to overwrite")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return target


def run(args: argparse.Namespace) -> Path:
    """Train and A/B every variant, rewriting the outputs after each; returns the .md path."""
    from sim_bridge.contract.logs import read_logs

    if args.pool:
        return pool(args)
    names = check_args(args)
    world_dir, logs_path = inputs(args)
    world, events = load_world(world_dir), read_logs(logs_path)
    args.out.mkdir(parents=True, exist_ok=True)
    runs: list[VariantRun] = []
    data_cache: dict = {}
    ab_base = ab_seed_base(args.seed, args.train_seed)
    for name in names:
        index = list(SEED_PUBLISHED).index(name) if name in SEED_PUBLISHED else len(runs)
        runs.append(run_variant(name, index, world, events, data_cache, args.sessions, args.seed, args.smoke,
                                args.device, args.train_seed))
        header = (f"# Seed table reproduced ({len(runs)} of {len(names)} variants)\n\n"
                  f"mean_time_per_session, each variant (indexed serving) vs sticky_artist, unpaired A/B "
                  f"(botify assignment, 50/50), {args.sessions} sessions, seed {ab_base} + (# − 1); world `{world_dir}`, "
                  f"logs `{logs_path}`{', SMOKE (configs/smoke.yaml)' if args.smoke else ''}"
                  f"{'' if args.train_seed is None else f', training seed {args.train_seed}'}. "
                  f"Seed's numbers: docs/seed.md.")
        write_outputs(args.out, runs, header)
    return args.out / OUTPUTS[1]


def main(argv: list[str] | None = None) -> int:
    try:
        md = run(parse_args(argv))
    except errors.USER_ERRORS as exc:
        return errors.report(exc)
    print(md.read_text(), flush=True)
    print(f"results: {md}" if md.name == POOLED else f"results: {md.with_suffix('.csv')}, {md}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
