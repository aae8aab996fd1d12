"""The shared rate-limit gate: after one 429 no worker of the batch sends anything until the delay passed.

:class:`RateGate` and :func:`gated` make a rate limit slow the *whole* batch down: a protocol flow
wrapped by :func:`gated` waits for the shared gate before each request, and an answer 429 closes the
gate for the delay the flow was going to wait anyway (the server's ``Retry-After``, or the backoff).
So no storm of requests that would all be answered 429 too. :func:`gated` only passes actions through,
so it works with the sync hook (threads) and the async transport alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_partneros._protocol import Flow, HttpReply, HttpRequest, Sleep
from airflow_provider_partneros.exceptions import PartnerOSCancelledError, PartnerOSRateLimitedError

_log = logging.getLogger(__name__)
MAX_GATE_HOLD = 600.0
"""Longest pause one 429 can impose on the whole batch (a server asking for longer is capped)."""


class RateGate:
    """A point in time before which no worker of the batch sends a request; thread-safe.

    A 429 moves it later (never earlier), so the longest delay any answer asked for wins.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._open_at = 0.0
        self.closings = 0
        """How many 429s closed the gate (for logs and tests)."""

    def close_for(self, seconds: float) -> None:
        seconds = min(max(0.0, seconds), MAX_GATE_HOLD)
        with self._lock:
            self._open_at = max(self._open_at, self._clock() + seconds)
            self.closings += 1

    def remaining(self) -> float:
        with self._lock:
            return max(0.0, self._open_at - self._clock())


GATE_REASON = "PartnerOS rate limit: a call of this batch was answered 429, the whole batch waits"


def gated(flow: Flow, gate: RateGate, cancel: threading.Event | None = None) -> Flow:
    """``flow`` with the batch's gate: wait for it before each request; a 429 answer closes it.

    The flow keeps its own retry decisions (how often, how long); the wrapper only makes its wait after
    a 429 everyone's wait. When the flow gives up on a 429 whose ``Retry-After`` exceeds what one call
    may wait, the gate still closes for that delay (capped at :data:`MAX_GATE_HOLD`).

    With ``cancel`` (the task's kill switch): once it is set, the flow takes no further step, so no
    request, retry or sign-in starts; a wait in progress ends at once (the wait then happens on the
    switch in the calling thread, so pass ``cancel`` only from threads, never on an event loop).
    The flow ends with :class:`~airflow_provider_partneros.exceptions.PartnerOSCancelledError`.
    """
    result: Any = None
    after_429 = False
    while True:
        try:
            action = flow.send(result)
        except StopIteration as stop:
            return stop.value
        except PartnerOSRateLimitedError as err:
            if err.retry_after is not None:
                gate.close_for(err.retry_after)
            raise
        _stop_if_cancelled(cancel, action)
        if isinstance(action, HttpRequest):
            while (pause := gate.remaining()) > 0:
                yield from _wait(pause, GATE_REASON, cancel, action)
            _stop_if_cancelled(cancel, action)
            result = yield action
            after_429 = isinstance(result, HttpReply) and result.status == 429
        elif isinstance(action, Sleep) and after_429:
            after_429 = False
            gate.close_for(action.seconds)
            while (pause := gate.remaining()) > 0:
                yield from _wait(pause, action.reason, cancel, action)
            result = None
        elif isinstance(action, Sleep) and cancel is not None:
            yield from _wait(action.seconds, action.reason, cancel, action)
            result = None
        else:
            result = yield action


def _wait(seconds: float, reason: str, cancel: threading.Event | None, action: object) -> Flow:
    """Wait ``seconds``: as a ``Sleep`` for the transport, or, with a kill switch, on the switch itself
    in this thread (the sync batch's workers), so a kill ends the wait at once."""
    if cancel is None:
        yield Sleep(seconds, reason)
        return
    _log.info("PartnerOS: waiting %.1f s before retrying (%s).", seconds, reason)
    cancel.wait(seconds)
    _stop_if_cancelled(cancel, action)


def _stop_if_cancelled(cancel: threading.Event | None, action: object) -> None:
    if cancel is not None and cancel.is_set():
        endpoint = action.endpoint if isinstance(action, HttpRequest) else None
        raise PartnerOSCancelledError(
            "The task was killed: this PartnerOS call was not started (or not retried).",
            endpoint=endpoint,
        )


__all__ = ["GATE_REASON", "MAX_GATE_HOLD", "RateGate", "gated"]
