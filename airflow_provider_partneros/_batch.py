"""Batch orchestration: one call per item over a bounded thread pool, outcomes kept per item.

Nothing here knows HTTP or PartnerOS endpoints. Two pieces:

* :func:`run_batch` calls ``call(item)`` for every item with at most ``max_concurrency`` running at
  once, and returns every item's result or error (a failure of one item never loses the others). An
  error of a class in ``abort_on`` (e.g. wrong password: every other item would fail the same way)
  stops starting new items; the items never started get that error, marked "not attempted".
* :class:`RateGate` and :func:`gated` make a rate limit slow the *whole* batch down: a protocol flow
  wrapped by :func:`gated` waits for the shared gate before each request, and an answer 429 closes the
  gate for the delay the flow was going to wait anyway (the server's ``Retry-After``, or the backoff).
  So after one 429 no worker sends anything until the server's delay has passed: no storm of requests
  that would all be answered 429 too. :func:`gated` only passes actions through, so it works with the
  sync hook (threads) and the async transport alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from airflow_provider_partneros._protocol import Flow, HttpReply, HttpRequest, Sleep
from airflow_provider_partneros.exceptions import (
    PartnerOSCancelledError,
    PartnerOSError,
    PartnerOSRateLimitedError,
)

T = TypeVar("T")

DEFAULT_MAX_CONCURRENCY = 8
"""Calls in flight at once; within ``requests``' default pool of 10 connections per host."""
MAX_CONCURRENCY = 64
MAX_GATE_HOLD = 600.0
"""Longest pause one 429 can impose on the whole batch (a server asking for longer is capped)."""
_ERROR_TEXT_LIMIT = 500
_log = logging.getLogger(__name__)
KILLED = "not attempted: the task was killed before this partner's call started"


# --- outcomes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemError:
    """Why one item failed, in a form safe for XCom: exception class, message, whether a retry can help.

    Messages come from :class:`PartnerOSError`, whose texts never contain a secret; other exceptions
    (a bug, not an answer) are reduced to their class name and a short text.
    """

    error_class: str
    message: str
    retryable: bool
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_exception(cls, err: BaseException) -> ItemError:
        if isinstance(err, PartnerOSError):
            return cls(type(err).__name__, err.message, err.retryable, err)
        text = " ".join(str(err).split())[:_ERROR_TEXT_LIMIT]
        return cls(type(err).__name__, f"unexpected {type(err).__name__}: {text}", True, err)

    def not_attempted(self) -> ItemError:
        """The same outcome for an item the batch never started because of this error."""
        return ItemError(
            self.error_class,
            f"not attempted: the batch stopped after another call failed with {self.error_class} "
            f"({self.message})",
            self.retryable,
            self.exception,
        )

    def to_json(self) -> dict[str, Any]:
        return {"class": self.error_class, "message": self.message, "retryable": self.retryable}


@dataclass
class BatchResult(Generic[T]):
    """Every item's outcome: ``results[item]`` or ``errors[item]``, in the order the items were given."""

    items: list[str]
    results: dict[str, T] = field(default_factory=dict)
    errors: dict[str, ItemError] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: each item -> its result, or ``{"error": {"class", "message", "retryable"}}``."""
        return {
            item: self.results[item] if item in self.results else {"error": self.errors[item].to_json()}
            for item in self.items
            if item in self.results or item in self.errors
        }


def unique(items: Iterable[str]) -> list[str]:
    """The items once each, in first-seen order (an id given twice is enriched once)."""
    return list(dict.fromkeys(items))


# --- the pool --------------------------------------------------------------------------------------------


def run_batch(
    items: Iterable[str],
    call: Callable[[str], T],
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    abort_on: tuple[type[BaseException], ...] = (),
    warm_up: bool = True,
    on_done: Callable[[str, T | None, ItemError | None], None] | None = None,
    cancel: threading.Event | None = None,
) -> BatchResult[T]:
    """Call ``call(item)`` for every item, at most ``max_concurrency`` at once, and keep every outcome.

    :param abort_on: errors that would repeat for every item (e.g. refused credentials): after one,
        no new item starts; the ones not started are recorded as "not attempted" with that error.
    :param warm_up: run the first item alone before fanning out: the session exists before the
        workers start, and an ``abort_on`` error (e.g. refused credentials) costs one call, not
        ``max_concurrency``.
    :param on_done: called (from the calling thread) after each item, e.g. for progress logs.
    :param cancel: once set (the task was killed), no new item starts; the calls in flight finish
        (their flows should stop too, see :func:`gated`), and the items never started are recorded as
        retryable "not attempted" errors.
    """
    if not 1 <= max_concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"max_concurrency must be between 1 and {MAX_CONCURRENCY}, got {max_concurrency}.")
    batch: BatchResult[T] = BatchResult(unique(items))
    pending = list(batch.items)
    aborted: ItemError | None = None

    def record(item: str, outcome: Future[T]) -> None:
        nonlocal aborted
        err = outcome.exception()
        if err is None:
            batch.results[item] = outcome.result()
        else:
            batch.errors[item] = ItemError.from_exception(err)
            if aborted is None and isinstance(err, abort_on):
                aborted = batch.errors[item]
        if on_done is not None:
            on_done(item, batch.results.get(item), batch.errors.get(item))

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    if warm_up and pending and not cancelled():
        first = pending.pop(0)
        done_first: Future[T] = Future()
        try:
            done_first.set_result(call(first))
        except Exception as err:
            done_first.set_exception(err)
        record(first, done_first)

    workers = min(max_concurrency, len(pending)) or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="partneros-batch") as pool:
        running: dict[Future[T], str] = {}
        queue = iter(pending)
        while True:
            while aborted is None and not cancelled() and len(running) < workers:
                item = next(queue, None)
                if item is None:
                    break
                running[pool.submit(call, item)] = item
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for outcome in done:
                record(running.pop(outcome), outcome)
    if aborted is not None:
        for item in batch.items:
            if item not in batch.results and item not in batch.errors:
                batch.errors[item] = aborted.not_attempted()
    if cancelled():
        killed = ItemError(PartnerOSCancelledError.__name__, KILLED, True)
        for item in batch.items:
            if item not in batch.results and item not in batch.errors:
                batch.errors[item] = killed
    return batch


# --- the shared rate-limit gate ----------------------------------------------------------------------------


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


def summarize_failures(errors: Mapping[str, ItemError], *, limit: int = 20) -> str:
    """``id: Class: message`` lines for a task's failure message (the first ``limit`` of them)."""
    lines = [f"- {item}: {err.error_class}: {err.message}" for item, err in list(errors.items())[:limit]]
    if len(errors) > limit:
        lines.append(f"- ... and {len(errors) - limit} more (see the task's XCom return_value)")
    return "\n".join(lines)


__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "MAX_CONCURRENCY",
    "BatchResult",
    "ItemError",
    "RateGate",
    "gated",
    "run_batch",
    "summarize_failures",
    "unique",
]
