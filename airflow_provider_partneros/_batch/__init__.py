"""The batch engine: many calls in one task, bounded concurrency, one outcome per item.

* :mod:`.run`: :func:`run_batch` over a thread pool, and the outcomes (:class:`ItemError`,
  :class:`BatchResult`) that become the batch operator's XCom;
* :mod:`.gate`: :class:`RateGate` and :func:`gated`, which make one 429 pause the whole batch;
* :mod:`.limits`: the concurrency bounds (what a DAG file checks at parse).

Nothing here knows PartnerOS endpoints; the hook's ``batch_analyze_partners`` puts the pieces
together. The package exports all three modules' names, loading :mod:`.run` and :mod:`.gate` on
first use (a DAG file that imports the batch operator needs only :mod:`.limits`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_partneros._batch.limits import DEFAULT_MAX_CONCURRENCY, MAX_CONCURRENCY

if TYPE_CHECKING:
    from airflow_provider_partneros._batch.gate import GATE_REASON, MAX_GATE_HOLD, RateGate, gated
    from airflow_provider_partneros._batch.run import (
        BatchResult,
        ItemError,
        run_batch,
        summarize_failures,
        unique,
    )

_IN_GATE = frozenset({"GATE_REASON", "MAX_GATE_HOLD", "RateGate", "gated"})
_IN_RUN = frozenset({"BatchResult", "ItemError", "run_batch", "summarize_failures", "unique"})

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "GATE_REASON",
    "MAX_CONCURRENCY",
    "MAX_GATE_HOLD",
    "BatchResult",
    "ItemError",
    "RateGate",
    "gated",
    "run_batch",
    "summarize_failures",
    "unique",
]


if not TYPE_CHECKING:  # hidden from mypy, which then checks every name against the imports above

    def __getattr__(name: str) -> Any:
        """The pool's and the gate's names, loaded on first use and then kept here."""
        if name in _IN_GATE:
            from airflow_provider_partneros._batch import gate

            value = getattr(gate, name)
        elif name in _IN_RUN:
            from airflow_provider_partneros._batch import run

            value = getattr(run, name)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value
