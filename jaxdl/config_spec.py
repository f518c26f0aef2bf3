"""What one config value must be: ``Spec``, and the check of a value against it.

A ``Spec`` is data (type, bounds, choices, element spec, length, distinctness),
so every key's rule is declared in one table (``jaxdl.config_schema``) and its
error message is written in one place (``check_value``). ``NOT_READ`` is the
spec of a key an experiment does not read: any value but its default is
refused, because it would silently do nothing.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from jaxdl.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Spec:
    """What one config value must be.

    Attributes:
      kind: ``bool``, ``int``, ``float`` (ints accepted), ``str``, ``tuple`` (a list
        or tuple), ``"regex"`` (a str that compiles), ``"not_read"`` (only the
        default: the experiment does not read the key), or None (anything).
      low, high: inclusive bounds unless ``low_open`` / ``high_open``.
      choices: the allowed values, or None.
      element: the spec of each element of a tuple; ``pair``: of a 2-tuple's
        ``(first, second)`` elements instead.
      min_len: a tuple's least number of elements; ``distinct``: no element twice.
      why: for ``"not_read"``, why the key is not read (shown in the message).
    """

    kind: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    element: "Spec | None" = None
    pair: "tuple[Spec, Spec] | None" = None
    min_len: int = 0
    distinct: bool = False
    why: str = ""

    def describe(self) -> str:
        """What is expected, in words (used in error messages)."""
        if self.choices is not None:
            return f"one of {self.choices}"
        name = {bool: "a bool (True or False)", int: "an integer", float: "a finite number",
                str: "a string", tuple: "a list or tuple", "regex": "a regular expression"
                }.get(self.kind, "a value")
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {self.low!r}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {self.high!r}")
        text = name + (" " + " and ".join(bounds) if bounds else "")
        if self.kind is tuple:
            parts = []
            if self.min_len:
                parts.append(f"at least {self.min_len} element(s)")
            if self.element is not None:
                parts.append(f"each {self.element.describe()}")
            if self.distinct:
                parts.append("none repeated")
            text += (" of " + ", ".join(parts)) if parts else ""
        return text


POSITIVE_INT = Spec(int, low=1)
COUNT = Spec(int, low=0)
FRACTION = Spec(float, low=0, high=1, high_open=True)  # [0, 1): dropout, decay rates
SHARE = Spec(float, low=0, high=1, low_open=True, high_open=True)  # (0, 1): a split's share
POSITIVE = Spec(float, low=0, low_open=True)
NON_NEGATIVE = Spec(float, low=0)
BOOL = Spec(bool)
REGEXES = Spec(tuple, element=Spec("regex"))
NOT_READ = Spec("not_read")


def not_read(why: str) -> Spec:
    """``NOT_READ`` with the reason shown in the error (e.g. "the sub-runs set it per mode")."""
    return Spec("not_read", why=why)


def int_list(low: int | None = None, high: int | None = None, *, min_len: int = 1,
             distinct: bool = True) -> Spec:
    """A non-empty list of distinct integers in ``[low, high]`` (class ids, seeds, budgets)."""
    return Spec(tuple, element=Spec(int, low=low, high=high), min_len=min_len, distinct=distinct)


def problem(spec: Spec, value: Any) -> str | None:
    """Why ``value`` does not satisfy ``spec``, or None."""
    kind = spec.kind
    if kind == "not_read":
        return "not read"
    if kind is bool and not isinstance(value, bool):
        return "wrong type"
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return "wrong type"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "wrong type"
        if not math.isfinite(value):
            return "not finite"
    if kind in (str, "regex") and not isinstance(value, str):
        return "wrong type"
    if kind == "regex":
        try:
            re.compile(value)
        except re.error as err:
            return f"not a valid regular expression ({err})"
    if kind is tuple:
        return _tuple_problem(spec, value)
    if spec.choices is not None and value not in spec.choices:
        return "not a choice"
    if kind in (int, float):
        if spec.low is not None and (value < spec.low or (spec.low_open and value == spec.low)):
            return "out of range"
        if spec.high is not None and (value > spec.high or (spec.high_open and value == spec.high)):
            return "out of range"
    return None


def _tuple_problem(spec: Spec, value: Any) -> str | None:
    if not isinstance(value, (tuple, list)):
        return "wrong type"
    for index, item in enumerate(value):
        if spec.pair is not None:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                return f"element {index} ({item!r}) is not a (regex, factor) pair"
            for part, sub in zip(item, spec.pair):
                if problem(sub, part):
                    return f"element {index} ({item!r}): {part!r} is not {sub.describe()}"
        elif spec.element is not None and problem(spec.element, item):
            return f"element {index} ({item!r}) is not {spec.element.describe()}"
    if len(value) < spec.min_len:
        return f"{len(value)} element(s); expected {spec.describe()}"
    if spec.distinct:
        seen = set()
        for index, item in enumerate(value):
            if item in seen:
                return f"element {index} ({item!r}) repeats an earlier one; expected {spec.describe()}"
            seen.add(item)
    return None


def check_value(key: str, value: Any, spec: Spec, default: Any = None) -> None:
    """Raise a ConfigError naming ``key`` unless ``value`` satisfies ``spec``.

    Args:
      default: the experiment's default, named when ``spec`` is ``NOT_READ``.
    """
    issue = problem(spec, value)
    if issue is None:
        return
    if issue == "not read":
        why = f" ({spec.why})" if spec.why else ""
        raise ConfigError(f"config.{key}={value!r} would do nothing: this experiment does not "
                          f"read config.{key}{why}; expected its default {default!r} "
                          "(remove the setting)")
    if issue.startswith("element") or "element(s)" in issue:
        raise ConfigError(f"config.{key}={value!r}: {issue}")
    detail = f" ({issue})" if "regular" in issue else ""
    raise ConfigError(f"config.{key}={value!r}{detail}; expected {spec.describe()}")
