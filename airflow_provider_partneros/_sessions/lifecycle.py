"""One holder's session, decided once for both transports: the sync hook and the async session.

A holder (a :class:`~airflow_provider_partneros.hooks.partneros.PartnerOSHook`, or the triggerer's
:class:`~.async_transport.AsyncSession`) keeps one session in its cookie jar. :class:`SessionLifecycle`
knows which (a generation number, the lease on a shared one), when it must be replaced, which store
to take it from (the deployment's, else the host's, else none), when a store that failed is tried
again, and how to let it go. Its flows yield the store actions of :mod:`.flows` plus
:class:`OpenStores`, :class:`UseCookies` and :class:`Note`; the transports perform them and hold the
lock (a thread lock or an asyncio lock) that makes one sign-in per holder however many callers.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros._sessions.flows import (
    SignOut,
    StoreAction,
    lock_wait,
    obtain_flow,
    release_flow,
)
from airflow_provider_partneros._sessions.records import CookieRecord
from airflow_provider_partneros._sessions.store import Lease, StoreEntry, StoreUnavailable
from airflow_provider_partneros.exceptions import PartnerOSError

IN_PROCESS_FAILURE_REUSE = 2.0
"""Seconds a failed sign-in's error is reused by the callers queued behind it in this process."""
STORE_RETRY = 30.0
"""Seconds before a store that was unavailable (Redis down) is tried again; meanwhile the next store
in line (the host's files) serves."""


@dataclass(frozen=True)
class OpenStores:
    """Open the stores this holder may use, best first; reply with ``(entries, warnings)``."""

    settings: PartnerOSSettings


@dataclass(frozen=True)
class UseCookies:
    """Put these cookies in the holder's jar (registering each value as a secret); reply None."""

    cookies: tuple[CookieRecord, ...]


@dataclass(frozen=True)
class Note:
    """A log line for the holder's logger: ``level`` is ``"info"`` or ``"warning"``."""

    level: str
    message: str


LifecycleAction = StoreAction | OpenStores | UseCookies | Note
LifecycleFlow = Generator[LifecycleAction, Any, Any]


class SessionLifecycle:
    """What one holder knows about its session. Not thread-safe: the transport serialises calls to
    :meth:`obtain` and :meth:`close` under its own lock; :meth:`usable` may be read at any time."""

    def __init__(self, settings: PartnerOSSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.generation = 0
        """0 = no session; incremented whenever the jar gets a new one."""
        self.lease: Lease | None = None
        self.linger = 0.0
        self._cookies: tuple[CookieRecord, ...] = ()
        self._entries: list[StoreEntry] | None = None
        self._down_until: dict[int, float] = {}
        self._failure: tuple[float, PartnerOSError] | None = None
        self._clock = clock

    @property
    def shares_session(self) -> bool:
        return self.lease is not None

    def usable(self) -> int:
        """The generation of a session fit to use now, or 0 (none yet, or due for rotation)."""
        generation, lease = self.generation, self.lease
        if (
            generation
            and lease is not None
            and lease.session.age(self._clock()) >= self.settings.session_max_age
        ):
            return 0
        return generation

    def obtain(self, *, stale: int | None = None) -> LifecycleFlow:
        """Make sure the jar holds a usable session and return its generation. ``stale``: the
        generation the server just refused (a 401), replaced once however many callers met it."""
        refused = stale is not None
        if refused and self.generation != stale:
            return self.generation  # another caller already replaced it
        if not refused and self.usable():
            return self.generation
        self._raise_recent_failure()
        if refused:
            yield Note("info", "PartnerOS session expired; signing in again.")
        entries = yield from self._usable_entries()
        old = self.lease
        try:
            got = yield from obtain_flow(
                entries,
                old=old,
                refused=refused,
                max_age=self.settings.session_max_age,
                linger=self.linger,
                wait=lock_wait(self.settings),
            )
        except PartnerOSError as err:
            self._failure = (time.monotonic(), err)
            raise
        self._failure = None
        for entry, problem in got.problems:
            yield from self._store_failed(entry, problem)
        if got.lease is not None and got.joined_age is not None:
            yield Note(
                "info",
                f"Using this {got.lease.entry.scope}'s shared PartnerOS session "
                f"(signed in {got.joined_age:.0f} s ago).",
            )
        self.lease = got.lease
        self._cookies = got.cookies
        yield UseCookies(got.cookies)
        self.generation += 1
        if old is not None and old is not self.lease:
            yield from self._release(old)
        return self.generation

    def close(self) -> LifecycleFlow:
        """Stop using the session: a shared one is released (and signed out by its last user, or by
        the steward after the linger), one of the holder's own is signed out. Never raises."""
        lease, self.lease = self.lease, None
        cookies, self._cookies = self._cookies, ()
        generation, self.generation = self.generation, 0
        if lease is not None:
            yield from self._release(lease)
        elif generation and cookies:
            try:
                yield SignOut(cookies)
            except Exception as err:  # a failed sign-out must never fail the task
                yield Note(
                    "warning", f"PartnerOS sign-out failed ({type(err).__name__}); it expires on its own."
                )

    # --- stores ---------------------------------------------------------------------------------------

    def _usable_entries(self) -> Generator[LifecycleAction, Any, list[StoreEntry]]:
        if not self.settings.session_sharing:
            return []
        if self._entries is None:
            from airflow_provider_partneros._sessions.config import configured_linger

            entries, warnings = yield OpenStores(self.settings)
            self._entries = list(entries)
            self.linger = configured_linger()
            for warning in warnings:
                yield Note("warning", warning)
        now = time.monotonic()
        return [e for e in self._entries if self._down_until.get(id(e), 0.0) <= now]

    def _store_failed(self, entry: StoreEntry, problem: Exception) -> LifecycleFlow:
        """Stop using a store that failed: an unavailable one for :data:`STORE_RETRY` seconds (the
        next store serves meanwhile), an unusable one for good."""
        assert self._entries is not None
        others = [e for e in self._entries if e is not entry]
        fallback = f"the {others[0].scope}'s session store serves meanwhile" if others else "signing in alone"
        if isinstance(problem, StoreUnavailable):
            self._down_until[id(entry)] = time.monotonic() + STORE_RETRY
            yield Note(
                "warning",
                f"PartnerOS {entry.scope} session store unavailable ({problem}); {fallback}, "
                f"and it is tried again in {STORE_RETRY:.0f} s.",
            )
        else:
            self._entries = others
            yield Note("warning", f"PartnerOS {entry.scope} session store unusable ({problem}); {fallback}.")

    def _release(self, lease: Lease) -> LifecycleFlow:
        try:
            yield from release_flow(lease, linger=self.linger)
        except Exception as err:  # releasing a session must never fail a call
            yield Note("warning", f"PartnerOS: could not release a session ({type(err).__name__}).")
        finally:
            lease.drop()

    def _raise_recent_failure(self) -> None:
        """A sign-in that just failed fails the callers queued behind it (and late arrivals for a
        moment): 200 triggers must not turn one refused sign-in into 200 more attempts."""
        failure = self._failure
        if failure is not None and time.monotonic() - failure[0] < IN_PROCESS_FAILURE_REUSE:
            raise copy.copy(failure[1])


__all__ = ["LifecycleAction", "LifecycleFlow", "Note", "OpenStores", "SessionLifecycle", "UseCookies"]
