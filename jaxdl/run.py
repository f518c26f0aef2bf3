"""The one entry point.

    python -m jaxdl.run --config=experiments/<name>.py --workdir=DIR [--config.KEY=VALUE ...]

Running the same command again in the same DIR resumes from the latest checkpoint.
"""

from __future__ import annotations

import os
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

from jaxdl.config import check_override_keys, describe_config
from jaxdl.errors import ConfigError, JaxdlError
from jaxdl.config_schema import validate_config
from jaxdl.experiment_file import load_experiment
from jaxdl.interruption import interrupted_message, stop_at_next_boundary_on_sigint
from jaxdl.parent_death import stop_with_parent
from jaxdl.run_report import final_report
from jaxdl.workdir import (as_write_error, discard_unstarted, ensure_writable,
                           prepare_workdir, write_summary)
from jaxdl.workdir_lock import hold_workdir

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiments/<name>.py", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (resumes if it holds a run).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-host run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")
_SHOW_CONFIG = flags.DEFINE_boolean(
    "show_config", False, "Print every config key with its value and what it must be, "
    "then exit (no --workdir needed).")


def check_overrides(argv: list[str]) -> None:
    """Fail early, naming the closest key, on ``--config.KEY`` that does not exist."""
    config_path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if config_path is None:
        return
    check_override_keys(argv, load_experiment(config_path).get_config())


def main(argv: list[str]) -> None:
    del argv
    if _COORDINATOR.value or _NUM_PROCESSES.value:
        from jaxdl.multihost import initialize
        initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    config = _CONFIG.value
    workdir = _WORKDIR.value
    if config is None:
        usage_error("--config is required: python -m jaxdl.run --config=experiments/<name>.py "
                    "--workdir=DIR")
    module = load_experiment(flags.FLAGS["config"].config_filename)
    if _SHOW_CONFIG.value:
        print(describe_config(config, getattr(module, "CONFIG_SCHEMA", None)))
        return
    if not workdir:
        usage_error("--workdir is required: the run's directory, e.g. --workdir=/tmp/run "
                    "(or --show_config to list the config's keys)")
    summary = run_experiment(module, config, workdir)
    if summary is not None:
        print(final_report(summary, workdir))  # the headline result, then the paths


def usage_error(message: str) -> None:
    """One line on stderr and exit code 2 (absl's would print its whole help, exit 1)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def run_experiment(module, config, workdir: str) -> dict | None:
    """Validate, lock ``workdir``, run ``module.run(config, workdir)``, write the summary.

    Nothing is written before ``config`` passes ``validate_config`` (with specs
    inferred from ``module.get_config()`` and the module's ``CONFIG_SCHEMA``).

    Returns:
      The summary (None if the experiment returns none).
    Raises:
      ConfigError, DataError, CheckpointError, WorkdirLockedError: bad input, a
        workdir in use or belonging to another run.
      RunInterrupted: Ctrl-C, with the report of where the run stopped.
    """
    validate_config(config, defaults=module.get_config(),
                    schema=getattr(module, "CONFIG_SCHEMA", None))
    ensure_writable(workdir)
    import jax  # after ``initialize``: the process index is known only then
    # Processes of a multi-process run share the lock process 0 takes.
    with hold_workdir(workdir, enabled=jax.process_index() == 0):
        try:
            prepare_workdir(workdir, config)
            if jax.process_index() == 0:  # the first line, before data and model load
                print(f"{config.get('experiment') or 'run'}: run directory "
                      f"{os.path.abspath(workdir)}", file=sys.stderr, flush=True)
            stop_at_next_boundary_on_sigint()
            start = time.time()
            summary = module.run(config, workdir)
        except KeyboardInterrupt:
            raise RunInterrupted(interrupted_message(workdir)) from None
        except BaseException as err:
            discard_unstarted(workdir)
            failed_write = as_write_error(err, workdir)  # a full disk in a plot, table, ...
            if failed_write is not None:
                raise failed_write from err
            raise
        if summary is not None:
            summary.setdefault("wall_seconds", round(time.time() - start, 3))
            write_summary(workdir, summary)
    return summary


class RunInterrupted(Exception):
    """Ctrl-C: carries the one-line report of where the run stopped."""


def entry() -> None:
    """Console entry: check overrides, then hand over to absl.

    Exit codes: 0 done, 2 a jaxdl error (bad config or data, workdir in use, ...),
    130 interrupted by Ctrl-C.
    """
    stop_with_parent()  # a sweep's sub-run: end with the sweep, SIGKILL included
    try:
        check_overrides(sys.argv[1:])
    except JaxdlError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)
    try:
        app.run(main)
    except JaxdlError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except (RunInterrupted, KeyboardInterrupt) as err:
        print(str(err) if isinstance(err, RunInterrupted) else "interrupted before the run "
              "started; nothing was written", file=sys.stderr)
        sys.stderr.flush()
        sys.exit(130)


if __name__ == "__main__":
    entry()
