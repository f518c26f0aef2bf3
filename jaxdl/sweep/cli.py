"""The sweep command: any experiment over a grid of config values × seeds.

    python -m jaxdl.sweep --config=experiments/<name>.py --workdir=DIR \\
        --grid='optimizer.lr=1e-3,3e-3' --grid='model.dropout=0.0,0.5' --seeds=0,1,2 \\
        [--parallel=N] [--metric=test/accuracy] [--mode=max|min] [--config.KEY=VALUE ...]

Every combination × seed is an ordinary run in ``DIR/runs/<combination>-s<seed>``,
up to N at a time as separate ``python -m jaxdl.run`` processes. Running the same
command again skips finished sub-runs and resumes interrupted ones. The sweep
ends with ``DIR/table.md`` (printed too), ``DIR/summary.json`` and ``DIR/plots/``:
each metric's mean ± std and 95% interval per combination, and the best one.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from jaxdl.errors import ConfigError, JaxdlError
from jaxdl.sweep.grid import parse_grid, plan_subruns, split_top_level
from jaxdl.sweep.plots import plot_sweep
from jaxdl.sweep.subruns import check_existing_configs, run_subruns, subrun_command
from jaxdl.sweep.table import composed_summary, metric_mode, sweep_markdown, sweep_rows, \
    write_table_files
from jaxdl.workdir import write_summary


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ConfigError on anything but distinct integers."""
    try:
        seeds = [int(s) for s in split_top_level(text)]
    except ValueError:
        raise ConfigError(f"--seeds={text!r}; expected comma-separated integers like 0,1,2") from None
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds={text!r} repeats a seed; expected distinct seeds")
    return seeds


def sweep(config_path: str, workdir: str, grid: Sequence[str], seeds: Sequence[int], *,
          overrides: Sequence[str] = (), parallel: int = 1, metric: str = "test/accuracy",
          mode: str = "") -> dict:
    """Run the sweep (skipping finished sub-runs) and write its table, summary and plots.

    Args:
      config_path: the experiment file, ``experiments/<name>.py``.
      workdir: the sweep's directory.
      grid: ``"KEY=V1,V2"`` per axis; every combination is swept.
      seeds: each combination runs once per seed (``config.seed``).
      overrides: ``--config.KEY=VALUE`` applied to every sub-run.
      parallel: sub-run processes at a time.
      metric: ``split/name`` that picks the best combination.
      mode: "max" or "min" for ``metric``; "" guesses from its name (losses: min).
    Returns:
      The ``summary.json`` written to ``workdir``.
    Raises:
      ConfigError: bad grid, seeds or overrides, found before any sub-run starts.
      JaxdlError: a sub-run failed, or ``metric`` is not among its metrics.
    """
    metric_mode(metric, mode)  # a bad --mode or --parallel fails before anything runs
    if parallel < 1:
        raise ConfigError(f"--parallel={parallel}; expected a positive number of processes")
    if not os.path.exists(config_path.split(":", 1)[0]):
        raise ConfigError(f"experiment file {config_path!r} not found; expected "
                          "--config=experiments/<name>.py")
    axes = parse_grid(grid)
    subruns = plan_subruns(config_path, axes, seeds, overrides)
    check_existing_configs(workdir, subruns)
    combos = len({r.combination for r in subruns})
    print(f"sweep: {combos} combination(s) × {len(seeds)} seed(s) = {len(subruns)} sub-runs "
          f"under {workdir}, {parallel} at a time", file=sys.stderr, flush=True)
    outcomes = run_subruns(workdir, config_path, subruns, parallel=parallel)
    print("sweep: writing the table and plots...", file=sys.stderr, flush=True)
    rows, best = sweep_rows(subruns, [o["summary"] for o in outcomes], metric=metric, mode=mode)
    markdown = sweep_markdown(rows, best)
    table_path = write_table_files(workdir, markdown)
    plots = plot_sweep(rows, workdir)
    runs = [{"name": r.name, "combination": r.combination, "values": dict(r.values),
             "seed": r.seed, "workdir": r.name, "status": o["status"],
             "command": subrun_command(config_path, os.path.join(workdir, r.name), r)[1:],
             "metrics": o["summary"].get("metrics"),
             "params_sha256": o["summary"].get("params_sha256")}
            for r, o in zip(subruns, outcomes)]
    summary = composed_summary(
        f"sweep:{subruns[0].config.get('experiment', '')}", subruns[0].config, runs, rows,
        markdown, seeds=list(seeds), grid={a.key: list(a.values) for a in axes},
        overrides=list(overrides), best=best, plots=[os.path.relpath(p, workdir) for p in plots])
    write_summary(workdir, summary)
    print(markdown)
    print(f"\ntable: {table_path}\nsummary: {os.path.join(workdir, 'summary.json')}\n"
          f"plots: {os.path.join(workdir, 'plots')}{os.sep}")
    return summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jaxdl.sweep",
                                     description="Sweep an experiment over a grid × seeds.")
    parser.add_argument("--config", help="experiments/<name>.py (required)")
    parser.add_argument("--workdir", help="the sweep's directory (required)")
    parser.add_argument("--show_config", action="store_true",
                        help="print every config key with its value (overrides applied), exit")
    parser.add_argument("--grid", action="append", default=[],
                        help="KEY=V1,V2,... (repeat for more axes)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--parallel", type=int, default=1, help="sub-runs at a time")
    parser.add_argument("--metric", default="test/accuracy", help="split/name to pick the best")
    parser.add_argument("--mode", default="", choices=("", "max", "min"),
                        help="whether higher or lower --metric is better (default: from its name)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; exit code 2 on bad input or a failed sub-run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = [a for a in argv if a.startswith("--config.")]
    bare = [a for a in overrides if "=" not in a]
    parser = _parser()
    args, unknown = parser.parse_known_args([a for a in argv if not a.startswith("--config.")])
    if unknown:
        parser.error(f"unrecognised arguments: {' '.join(unknown)}")
    for name in ("config", "workdir")[:1 if args.show_config else 2]:
        if not getattr(args, name):
            print(f"error: --{name} is required: python -m jaxdl.sweep "
                  "--config=experiments/<name>.py --workdir=DIR --grid=KEY=V1,V2 "
                  "(or --show_config to list the config's keys)", file=sys.stderr)
            return 2
    try:
        if args.show_config:
            from jaxdl.config import check_override_keys, describe_config
            from jaxdl.experiment_file import load_experiment
            from jaxdl.sweep.grid import resolve_config
            module = load_experiment(args.config)
            check_override_keys(overrides, module.get_config())
            config = resolve_config(args.config, overrides, "--config.KEY=VALUE overrides")
            print(describe_config(config, getattr(module, "CONFIG_SCHEMA", None)))
            return 0
        if bare:
            raise ConfigError(f"{bare[0]!r}: expected --config.KEY=VALUE (with '=')")
        sweep(args.config, args.workdir, args.grid, parse_seeds(args.seeds),
              overrides=overrides, parallel=args.parallel, metric=args.metric, mode=args.mode)
    except JaxdlError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


__all__ = ["parse_seeds", "sweep", "main"]
