"""A sweep's grid: ``--grid='KEY=V1,V2'`` axes, their combinations and sub-run configs.

Every combination of grid values × seed is one ordinary run, configured exactly
as ``python -m jaxdl.run --config=FILE --config.KEY=VALUE ...`` would configure
it: the overrides go through the same absl/ml_collections parser, so a value
means here what it means on the command line. All of them are resolved and
checked before any sub-run starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from typing import Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags

from jaxdl.config import check_override_type, flat_keys, unknown_key_error
from jaxdl.config_schema import validate_experiment
from jaxdl.errors import ConfigError
from jaxdl.experiment_file import load_experiment


@dataclasses.dataclass(frozen=True)
class GridAxis:
    """One ``--grid`` flag: a config key and the raw values it takes, in order."""
    key: str
    values: tuple[str, ...]
    spec: str  # the flag as given, for error messages


@dataclasses.dataclass(frozen=True)
class SubRun:
    """One sub-run: a combination of grid values and a seed.

    ``name`` is its directory under the sweep's workdir (``runs/<combination>-s<seed>``),
    ``combination`` the label shared by its seeds, ``overrides`` the
    ``--config.KEY=VALUE`` arguments that configure it (extra ones, grid, seed).
    """
    name: str
    combination: str
    values: tuple[tuple[str, object], ...]  # (key, parsed value) per grid axis
    seed: int
    overrides: tuple[str, ...]
    config: ml_collections.ConfigDict


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: ``"(1,2),(3,)"`` -> ``["(1,2)", "(3,)"]``."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def parse_grid(specs: Sequence[str]) -> list[GridAxis]:
    """``["optimizer.lr=1e-3,3e-3", ...]`` -> one ``GridAxis`` per flag.

    Raises:
      ConfigError: no ``=``, an empty value, a key given twice, or ``seed`` (use ``--seeds``).
    """
    axes, seen = [], set()
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--grid {spec!r}: expected KEY=VALUE1,VALUE2,... "
                              "(e.g. --grid='optimizer.lr=1e-3,3e-3')")
        raw = split_top_level(values)
        if any(not v for v in raw):
            raise ConfigError(f"--grid {spec!r}: empty value in {values!r}; expected "
                              "comma-separated values")
        if key == "seed":
            raise ConfigError(f"--grid {spec!r}: seeds are swept with --seeds=0,1,2, not --grid")
        if key in seen:
            raise ConfigError(f"--grid {spec!r}: key '{key}' is in more than one --grid flag")
        seen.add(key)
        axes.append(GridAxis(key, tuple(raw), spec))
    return axes


def resolve_config(config_path: str, overrides: Sequence[str], where: str = "overrides"
                   ) -> ml_collections.ConfigDict:
    """The config ``jaxdl.run`` builds from ``--config=config_path`` and ``overrides``.

    Raises:
      ConfigError: absl refuses a value (naming ``where`` it came from, the flag and why).
    """
    argv = ["jaxdl.sweep", f"--config={config_path}", *overrides]
    flag_values = flags.FlagValues()  # a private set: the process's own flags stay untouched
    holder = config_flags.DEFINE_config_file("config", None, flag_values=flag_values,
                                             lock_config=True, sys_argv=argv)
    try:
        flag_values(argv)
    except flags.Error as err:
        raise ConfigError(f"{where}: {err}; expected a value of the key's type, "
                          "as on the jaxdl.run command line") from None
    return holder.value


def check_key_and_values(axis: GridAxis, base: ml_collections.ConfigDict,
                         valid: set[str]) -> None:
    """An unknown key names the closest one; an int/float key refuses other values."""
    flag = f"command-line flag '--grid={axis.spec}'"
    if axis.key not in valid:
        raise unknown_key_error(axis.key, base, flag)
    for raw in axis.values:
        check_override_type(axis.key, raw, base, f"--grid={axis.spec}")


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _slug(name: str, value: object) -> str:
    """``name=value`` with only directory-safe characters; tuples as ``32_16``."""
    text = "_".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name) + "=" + re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def combination_labels(axes: Sequence[GridAxis],
                       parsed: Sequence[tuple[tuple[str, object], ...]]) -> list[str]:
    """Directory-safe labels, one per combination: ``lr=0.001-dropout=0.5``.

    Short key names are used when they are unique across axes and give distinct
    labels; else full dotted keys; else a hash of the values is appended.
    """
    leaves = [_leaf(a.key) for a in axes]
    choices = ([leaves] if len(set(leaves)) == len(leaves) else []) + [[a.key for a in axes]]
    for names in choices:
        labels = ["-".join(_slug(n, v) for n, (_, v) in zip(names, combo)) or "default"
                  for combo in parsed]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{label}-{hashlib.sha256(repr(combo).encode()).hexdigest()[:8]}"
            for label, combo in zip(labels, parsed)]


def plan_subruns(config_path: str, axes: Sequence[GridAxis], seeds: Sequence[int],
                 overrides: Sequence[str] = ()) -> list[SubRun]:
    """Every combination × seed, resolved and validated; nothing is written.

    Each sub-run's whole config is checked as ``jaxdl.run`` checks it
    (``validate_experiment``: the experiment's schema, its sentinels, the
    cross-key rules), so a bad value anywhere in the grid stops the sweep
    before any sub-run starts, and a config ``jaxdl.run`` accepts is accepted.

    Args:
      config_path: the experiment file (``experiments/<name>.py``).
      axes: from ``parse_grid``; combinations in the order given (last axis fastest).
      seeds: ``config.seed`` of each combination's sub-runs.
      overrides: extra ``--config.KEY=VALUE`` applied to every sub-run.
    Returns:
      ``SubRun``s ordered by combination, then seed.
    Raises:
      ConfigError: an unknown key (naming the closest), a value of the wrong type,
        a grid key also given as an override, a value the experiment refuses, or
        two values of one axis that are equal once parsed (``0.1,1e-1``: both
        would be one sub-run directory).
    """
    if not seeds:
        raise ConfigError("--seeds is empty; expected seeds like --seeds=0,1,2")
    module = load_experiment(config_path)
    base = resolve_config(config_path, overrides, "--config.KEY=VALUE overrides")
    valid = set(flat_keys(base))
    given = {o[len("--config."):].split("=", 1)[0] for o in overrides}
    for axis in axes:
        check_key_and_values(axis, base, valid)
        if axis.key in given:
            raise ConfigError(f"--grid {axis.spec!r}: key '{axis.key}' is also given as "
                              f"--config.{axis.key}=...; expected it in one place only")
    for axis in axes:
        check_distinct_values(config_path, axis, overrides)
    combos = list(itertools.product(*[[(a.key, v) for v in a.values] for a in axes]))
    parsed, configs = [], {}
    for combo in combos:
        grid_args = tuple(f"--config.{k}={v}" for k, v in combo)
        for seed in seeds:
            args = (*overrides, *grid_args, f"--config.seed={int(seed)}")
            where = "--grid values " + " ".join(grid_args)
            config = resolve_config(config_path, args, where)
            try:
                validate_experiment(module, config)
            except ConfigError as err:
                raise ConfigError(f"sub-run with {' '.join(grid_args)} --config.seed={seed}: "
                                  f"{err}; no sub-run was started") from None
            configs[(combo, seed)] = (args, config)
        parsed.append(tuple((k, _value(configs[(combo, seeds[0])][1], k)) for k, _ in combo))
    labels = combination_labels(axes, parsed)
    return [SubRun(f"runs/{label}-s{int(seed)}", label, values, int(seed),
                   *configs[(combo, seed)])
            for combo, label, values in zip(combos, labels, parsed) for seed in seeds]


def check_distinct_values(config_path: str, axis: GridAxis, overrides: Sequence[str] = ()) -> None:
    """Refuse two values of ``axis`` that parse to the same config value.

    ``--grid='optimizer.lr=0.1,1e-1'`` would make two sub-runs of one config, racing
    for one directory.

    Raises:
      ConfigError: naming both raw values and what they parse to.
    """
    seen: dict[str, str] = {}
    for raw in axis.values:
        config = resolve_config(config_path, (*overrides, f"--config.{axis.key}={raw}"),
                                f"--grid {axis.spec!r}")
        parsed = repr(_value(config, axis.key))
        if parsed in seen:
            raise ConfigError(f"--grid {axis.spec!r}: values {seen[parsed]!r} and {raw!r} are the "
                              f"same value ({parsed}) once parsed, so they would be one sub-run "
                              "twice; expected distinct values (drop one)")
        seen[parsed] = raw


def _value(config: ml_collections.ConfigDict, key: str) -> object:
    for part in key.split("."):
        config = config[part]
    return config


__all__ = ["GridAxis", "SubRun", "split_top_level", "parse_grid", "resolve_config",
           "check_key_and_values", "check_distinct_values", "combination_labels", "plan_subruns"]
