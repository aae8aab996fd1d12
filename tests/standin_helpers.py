"""Helpers for tests that need the stand-in to act at a precise moment of a client's conversation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from airflow_provider_partneros.testing import PartnerOSStandIn


def on_status_call(standin: PartnerOSStandIn, n: int, action: Callable[[Any], None]) -> None:
    """Run ``action(request)`` just before the stand-in serves its n-th integration status request.

    A deterministic "during the wait" moment: a thread watching counters would race with the client.
    The request has already looked its session up, so an action that ends sessions and wants this
    very request refused sets ``request.session = None`` too.
    """
    original = standin._ep_integration_status
    calls = 0
    lock = threading.Lock()

    def wrapped(req: Any) -> Any:
        nonlocal calls
        with lock:
            calls += 1
            current = calls
        if current == n:
            action(req)
        return original(req)

    standin._ep_integration_status = wrapped  # type: ignore[method-assign]
