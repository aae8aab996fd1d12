"""What a DAG author's argument is before the task runs: checked at DAG parse only when it is literal.

An operator's or sensor's ``__init__`` runs at DAG parse, when a templated field still holds its
Jinja source and a mapped or upstream value is an ``XComArg``. Both are checked again in ``execute``,
after rendering; these two tests say which values to leave alone at parse. Shared by every operator
and the sensor, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_template(value: Any) -> bool:
    """A Jinja string not rendered yet (at DAG parse time): checked again at task start."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def is_lazy(value: Any) -> bool:
    """An XComArg / mapped argument: resolved at run time, so it cannot be checked at DAG parse."""
    return callable(getattr(value, "resolve", None)) and not isinstance(value, (str, bytes, Mapping))


def is_unresolved(value: Any) -> bool:
    """Either of the above: a value whose check waits for ``execute``."""
    return is_lazy(value) or is_template(value)


__all__ = ["is_lazy", "is_template", "is_unresolved"]
