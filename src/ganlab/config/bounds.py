"""Bounds on a setting, written once beside its default in the class signature that takes it::

    gamma: Annotated[float, Bound(above=0, at_most=1)] = 0.75

The config schemas are generated from such signatures (``ganlab.config.schemas.schema_of``), so a value outside
its bound fails in one line before anything is built (``ganlab.config.checks.check_bounds``), and the class
checks the same bound when it is built from Python (``check_arguments``).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any


@dataclasses.dataclass(frozen=True)
class Bound:
    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None

    def metadata(self) -> dict[str, float]:
        return {name: value for name, value in dataclasses.asdict(self).items() if value is not None}

    def violation(self, key: str, value: Any) -> str | None:
        """What is wrong with ``key=value``, or None when it is inside the bound (or not a number)."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        for name, holds, sign in (
            ("above", lambda b: value > b, ">"),
            ("at_least", lambda b: value >= b, ">="),
            ("below", lambda b: value < b, "<"),
            ("at_most", lambda b: value <= b, "<="),
        ):
            bound = getattr(self, name)
            if bound is not None and not holds(bound):
                return f"{key}={value} must be {sign} {bound}"
        return None


def annotated_bound(hint: Any) -> tuple[Any, Bound | None]:
    """(the type without ``Annotated``, its Bound if it has one)."""
    if typing.get_origin(hint) is not Annotated:
        return hint, None
    base, *extras = typing.get_args(hint)
    return base, next((extra for extra in extras if isinstance(extra, Bound)), None)


def signature_bounds(function: Callable) -> dict[str, Bound]:
    """The bounds in ``function``'s signature, by parameter name."""
    hints = typing.get_type_hints(function, include_extras=True)
    return {name: bound for name, hint in hints.items() if (bound := annotated_bound(hint)[1]) is not None}


def check_arguments(function: Callable, arguments: dict[str, Any], prefix: str = "") -> None:
    """Raise ValueError for the first argument outside its signature's bound (``prefix`` names the config group)."""
    parameters = inspect.signature(function).parameters
    for name, bound in signature_bounds(function).items():
        if name in parameters and name in arguments:
            problem = bound.violation(f"{prefix}{name}", arguments[name])
            if problem:
                raise ValueError(problem)
