"""Provenance of a run: every (re)start in a history, and who the checkpoints belong to.

``config_history.jsonl`` in the workdir gets one line per start: the resolved
config, the step it started from, when and where. ``config.json`` holds only the
latest config, so the history is what records the settings of the first steps
of a run that was later resumed with ``force_resume``.

``checkpoints/run_identity.json`` records the identity of the run that writes
the checkpoints (experiment, seed and a hash of the config). It lives inside
``checkpoints/`` so that it travels with them: checkpoints copied in from
another run (another seed, say) are refused instead of being resumed silently.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import socket
from typing import Any, Mapping

from jaxdl.errors import CheckpointError

HISTORY_NAME = "config_history.jsonl"
IDENTITY_NAME = "run_identity.json"


def finished_checkpoint_steps(workdir: str) -> list[int]:
    """Steps of finished checkpoints under ``workdir/checkpoints`` (numeric names), sorted."""
    try:
        names = os.listdir(os.path.join(workdir, "checkpoints"))
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit())


def run_identity(config: Mapping[str, Any], neutral_keys: tuple[str, ...]) -> dict:
    """``{"experiment", "seed", "config_sha256", "config"}`` of a resolved config dict.

    Args:
      config: the JSON-able config.
      neutral_keys: dotted keys left out of the hash (they do not change results).
    """
    trimmed = json.loads(json.dumps(config))
    for key in neutral_keys:
        *parents, leaf = key.split(".")
        node = trimmed
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    blob = json.dumps(trimmed, sort_keys=True).encode()
    return {"experiment": config.get("experiment", ""), "seed": config.get("seed"),
            "config_sha256": hashlib.sha256(blob).hexdigest(), "config": trimmed}


def check_checkpoint_identity(workdir: str, identity: dict, *, force: bool,
                              differences) -> None:
    """Refuse checkpoints that another run wrote.

    Args:
      workdir: the run directory.
      identity: this run's ``run_identity``.
      force: ``config.force_resume``: accept them anyway.
      differences: ``differences(saved_config, current_config) -> list[str]``.
    Raises:
      CheckpointError: ``checkpoints/run_identity.json`` names another run, listing
        the differing keys (e.g. ``seed: saved=1 now=0``).
    """
    path = os.path.join(workdir, "checkpoints", IDENTITY_NAME)
    if force or not os.path.exists(path) or not finished_checkpoint_steps(workdir):
        return
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint identity {path} is unreadable ({err}); expected "
                              "the JSON this run's checkpoints were written with. Pass "
                              "--config.force_resume=True to resume anyway.") from err
    if saved.get("config_sha256") == identity["config_sha256"]:
        return
    diffs = differences(saved.get("config", {}), identity["config"]) or [
        f"config_sha256: saved={saved.get('config_sha256')!r} now={identity['config_sha256']!r}"]
    raise CheckpointError(
        f"the checkpoints in {os.path.join(workdir, 'checkpoints')} belong to another run "
        f"(experiment {saved.get('experiment')!r}, seed {saved.get('seed')!r}); refusing to "
        "resume from them. Differing keys:\n  " + "\n  ".join(diffs) +
        "\nUse another --workdir, or pass --config.force_resume=True to resume anyway.")


def write_checkpoint_identity(workdir: str, identity: dict, write_json) -> None:
    """Write ``checkpoints/run_identity.json`` (creating ``checkpoints/``)."""
    directory = os.path.join(workdir, "checkpoints")
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, IDENTITY_NAME), identity)


def append_history(workdir: str, config: Mapping[str, Any], *, start_step: int,
                   note: str = "") -> None:
    """Append one start (config, start step, time, host, pid) to ``config_history.jsonl``."""
    entry = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                 timespec="seconds"),
             "start_step": start_step, "host": socket.gethostname(), "pid": os.getpid(),
             **({"note": note} if note else {}), "config": config}
    with open(os.path.join(workdir, HISTORY_NAME), "a") as f:
        f.write(json.dumps(entry, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_history(workdir: str) -> list[dict]:
    """The entries of ``config_history.jsonl``, oldest first (a torn last line skipped)."""
    try:
        with open(os.path.join(workdir, HISTORY_NAME)) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries
