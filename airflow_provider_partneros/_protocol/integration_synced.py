"""When the event watcher reports a new sync, with no I/O: the decision behind ``IntegrationSyncedTrigger``.

The trigger (:mod:`airflow_provider_partneros.triggers.integration_synced`) is a thin loop: it loads the
stored mark, polls, and hands each outcome to a :class:`SyncWatch`, which answers with a :class:`Step`
saying what to log, which mark to store, whether to fire an event and how long to wait. The rules:

* the first poll without a stored mark is a *baseline*: the current ``lastSyncAt`` is stored, not
  reported (a new watcher must not fire for a sync that happened before it existed);
* an event fires only while the integration is :data:`HEALTHY_STATUS` and its ``lastSyncAt`` is later
  than the mark; its mark is stored only after the event was handed over (at least once);
* trouble is logged once per change of kind, and the next poll backs off: doubling from
  ``poke_interval`` up to :data:`MAX_ERROR_BACKOFF`, a 429's delay honoured, and never faster than the
  sign-in floor after a refused or rate-limited sign-in;
* refused credentials or a bad connection make the loop read the Airflow connection again (the
  password may be fixed while the watcher waits).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_partneros._protocol.endpoints import SIGN_IN_PATH
from airflow_provider_partneros._protocol.integration import (
    integration_fix,
    next_poll_delay,
    parse_api_timestamp,
)
from airflow_provider_partneros.exceptions import (
    PartnerOSConfigError,
    PartnerOSError,
    PartnerOSInvalidCredentialsError,
)

HEALTHY_STATUS = "active"
"""The one status in which a new ``lastSyncAt`` is reported (a failing integration did not sync)."""
NEVER_SYNCED = ""
"""The stored mark of a baseline taken while the integration had never synced (the store refuses None)."""
MAX_ERROR_BACKOFF = 600.0
"""Longest pause between two polls while something keeps failing (doubles from ``poke_interval``)."""

LogLine = tuple[int, str]
"""A logging level and the message, formatted."""


@dataclass(frozen=True)
class Step:
    """What the loop does next, in this order: log, store ``baseline``, yield ``event`` (then store
    ``mark`` once it was handed over), wait ``wait`` seconds, and read the connection again if asked."""

    logs: tuple[LogLine, ...] = ()
    baseline: str | None = None
    event: dict[str, Any] | None = None
    mark: str | None = None
    wait: float = 0.0
    reload_connection: bool = False


@dataclass
class SyncWatch:
    """The watcher's state between polls (one per ``run()``; only the stored mark outlives it)."""

    connection_id: str
    partneros_conn_id: str
    poke_interval: float
    sign_in_floor: float
    """Shortest pause after a refused or rate-limited sign-in (the trigger module's seam)."""
    mark: str | None = None
    """``lastSyncAt`` of the last event reported, or the baseline."""
    mark_known: bool = False
    problem: str | None = None
    """The kind of trouble last logged; None while healthy."""
    failures: int = field(default=0)
    """Failed polls in a row, for the backoff."""

    # --- the stored mark ----------------------------------------------------------------------------

    def restore(self, stored: object) -> Step:
        """Take a mark saved by an earlier run of this watcher; anything but a string means none."""
        if self.mark_known or not isinstance(stored, str):
            return Step()
        self.mark, self.mark_known = stored or None, True
        return Step(
            logs=(
                (
                    logging.INFO,
                    f"Watching integration {self.connection_id}: last reported sync {self.mark} (from the "
                    f"asset state store); each later sync while {HEALTHY_STATUS!r} yields one event.",
                ),
            )
        )

    # --- one poll -----------------------------------------------------------------------------------

    def on_document(self, document: Mapping[str, Any]) -> Step:
        """Decide from one status document: baseline, event, problem or nothing new."""
        self.failures = 0
        logs: list[LogLine] = []
        baseline: str | None = None
        raw = document.get("lastSyncAt")
        synced = raw if isinstance(raw, str) and parse_api_timestamp(raw) else None
        if not self.mark_known:
            # First look with no stored mark: the current sync is the baseline, not news.
            self.mark, self.mark_known = synced, True
            logs.append(
                (
                    logging.INFO,
                    f"Watching integration {self.connection_id}: baseline lastSyncAt {synced}; each later "
                    f"sync while {HEALTHY_STATUS!r} yields one event.",
                )
            )
            baseline = synced or NEVER_SYNCED
        if document.get("status") != HEALTHY_STATUS:
            logs += self._problem_logs(*unhealthy(document))
            return Step(tuple(logs), baseline, wait=self.poke_interval)
        if self.problem is not None:
            logs.append(
                (logging.INFO, f"Integration {self.connection_id} is healthy again (was: {self.problem}).")
            )
            self.problem = None
        if synced is None or not is_later(synced, self.mark):
            return Step(tuple(logs), baseline, wait=self.poke_interval)
        previous, self.mark = self.mark, synced
        news = (
            f"Integration {self.connection_id} synced at {synced} (previous {previous}): yielding an event."
        )
        logs.append((logging.INFO, news))
        return Step(
            tuple(logs),
            baseline,
            event=self.payload(document, synced, previous),
            mark=synced,
            wait=self.poke_interval,
        )

    def on_error(self, err: BaseException) -> Step:
        """A poll (or reading the connection) failed: log if the trouble is new, back off."""
        key, message = describe(err)
        self.failures += 1
        delay = min(
            self.poke_interval * 2 ** min(self.failures - 1, 20), max(MAX_ERROR_BACKOFF, self.poke_interval)
        )
        if isinstance(err, PartnerOSError):
            delay = max(delay, next_poll_delay(self.poke_interval, err))
            if err.endpoint == SIGN_IN_PATH:
                delay = max(delay, self.sign_in_floor)
        return Step(
            self._problem_logs(key, message, next_in=delay),
            wait=delay,
            reload_connection=isinstance(err, (PartnerOSInvalidCredentialsError, PartnerOSConfigError)),
        )

    def is_new_problem(self, err: BaseException) -> bool:
        """Whether ``err`` is a kind of trouble not logged yet (its traceback is then worth a log)."""
        return describe(err)[0] != self.problem

    def payload(self, document: Mapping[str, Any], synced: str, previous: str | None) -> dict[str, Any]:
        """The asset event's payload (docs/events.md): plain JSON values only."""
        return {
            "connection_id": self.connection_id,
            "partneros_conn_id": self.partneros_conn_id,
            "platform": document.get("platform"),
            "status": document.get("status"),
            "last_sync_at": synced,
            "previous_sync_at": previous,
            "instance_url": document.get("instanceUrl"),
            "document": dict(document),
        }

    def _problem_logs(self, key: str, message: str, next_in: float | None = None) -> tuple[LogLine, ...]:
        when = f" Next poll in {next_in:.3g} s." if next_in is not None else ""
        if key == self.problem:
            return ((logging.DEBUG, f"Integration {self.connection_id}: still {key}.{when}"),)
        self.problem = key
        return (
            (
                logging.WARNING,
                f"Integration {self.connection_id}: {message} The watcher keeps polling and yields no event "
                f"until it is healthy again and has synced anew.{when}",
            ),
        )


def is_later(synced: str, mark: str | None) -> bool:
    """Whether ``synced`` is news after ``mark`` (None: nothing reported yet, so anything is)."""
    if mark is None:
        return True
    before = parse_api_timestamp(mark)
    now = parse_api_timestamp(synced)
    return now is not None and (before is None or now > before)


def unhealthy(document: Mapping[str, Any]) -> tuple[str, str]:
    """The problem key and message for a document whose status is not healthy."""
    status = document.get("status")
    if not isinstance(status, str):
        return (
            "unreadable status",
            f"PartnerOS answered a status document without a status ({sorted(document)[:10]}).",
        )
    said = document.get("lastErrorMessage")
    said_text = f" Last error: {said.rstrip('.')}." if isinstance(said, str) and said.strip() else ""
    return f"status {status!r}", f"is {status!r}.{said_text} {integration_fix(status)}."


def describe(err: BaseException) -> tuple[str, str]:
    """A key that changes only when the kind of trouble does, and the text that says what to do."""
    if isinstance(err, PartnerOSError):
        # The messages are written for tasks; a watcher has no task to retry, it polls on.
        return f"{type(err).__name__}:{err.status}", err.message.replace("; the task will retry.", ".")
    return type(err).__name__, f"{type(err).__name__}: {err}. Check the Airflow connection and the network."


__all__ = [
    "HEALTHY_STATUS",
    "MAX_ERROR_BACKOFF",
    "NEVER_SYNCED",
    "Step",
    "SyncWatch",
    "describe",
    "is_later",
    "unhealthy",
]
