"""The batch pool: one call per item over a bounded thread pool, outcomes kept per item.

:func:`run_batch` calls ``call(item)`` for every item with at most ``max_concurrency`` running at
once, and returns every item's result or error (a failure of one item never loses the others). An
error of a class in ``abort_on`` (e.g. wrong password: every other item would fail the same way)
stops starting new items; the items never started get that error, marked "not attempted". Nothing
here knows HTTP or PartnerOS endpoints; the rate limit is :mod:`.gate`'s job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from airflow_provider_partneros._batch.limits import DEFAULT_MAX_CONCURRENCY, MAX_CONCURRENCY
from airflow_provider_partneros.exceptions import PartnerOSCancelledError, PartnerOSError

T = TypeVar("T")

_ERROR_TEXT_LIMIT = 500
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
        (their flows should stop too, see :func:`~airflow_provider_partneros._batch.gate.gated`), and
        the items never started are recorded as retryable "not attempted" errors.
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
    "run_batch",
    "summarize_failures",
    "unique",
]
