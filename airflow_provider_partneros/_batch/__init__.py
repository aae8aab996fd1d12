"""The batch engine: many calls in one task, bounded concurrency, one outcome per item.

* :mod:`.run`: :func:`run_batch` over a thread pool, and the outcomes (:class:`ItemError`,
  :class:`BatchResult`) that become the batch operator's XCom;
* :mod:`.gate`: :class:`RateGate` and :func:`gated`, which make one 429 pause the whole batch.

Nothing here knows PartnerOS endpoints; the hook's ``batch_analyze_partners`` puts the pieces together.
"""

from __future__ import annotations

from airflow_provider_partneros._batch.gate import GATE_REASON, MAX_GATE_HOLD, RateGate, gated
from airflow_provider_partneros._batch.run import (
    DEFAULT_MAX_CONCURRENCY,
    MAX_CONCURRENCY,
    BatchResult,
    ItemError,
    run_batch,
    summarize_failures,
    unique,
)

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
