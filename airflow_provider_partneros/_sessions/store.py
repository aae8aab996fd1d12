"""The interface every session store backend implements, and the :class:`Lease` built on it.

A store keeps, per PartnerOS identity, the one shared session and who uses it. The lifecycle
(:mod:`.flows`) decides everything with only these operations, so a backend is one class:
:class:`~.file_store.FileEntry` shares a session between the processes of one host,
:class:`~.redis_store.RedisEntry` between every host of a deployment.

What a backend must guarantee:

* :meth:`StoreEntry.lock` is exclusive across every process that shares the store, and a holder
  that dies stops blocking others within a bounded time (the kernel drops a ``flock``; a Redis
  lock expires unless its live holder keeps renewing it).
* :meth:`StoreEntry.interest` and :meth:`StoreEntry.claim` are shared claims that a dead process
  stops holding within a bounded time, so :meth:`StoreEntry.idle` and :meth:`StoreEntry.unused`
  never count a killed task as a user for long.
* :meth:`StoreEntry.read` of anything damaged, tampered with or unreadable is an empty
  :class:`~.records.StoreState` (it costs a sign-in, never trust).
* Nothing stored reveals the password, and nothing stored names the user, organization or URL.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from airflow_provider_partneros._sessions.records import StoredSession, StoreState


class StoreRefused(Exception):
    """The store is unsafe or unusable for this holder; the message says which and the fix."""


class StoreUnavailable(StoreRefused):
    """The store is unreachable or failing right now (a deployment store's server is down, slow, or
    refuses the password); another store may serve meanwhile, and this one is tried again later."""


class StoreBusy(Exception):
    """The entry's lock did not come in time: fall back to a session of one's own."""


class Held(Protocol):
    """A lock or a claim this process holds; :meth:`release` is idempotent and never raises."""

    def release(self) -> None: ...


class StoreEntry(Protocol):
    """One identity's sessions in one store."""

    scope: str
    """Who shares it, for log lines: ``"host"`` or ``"deployment"``."""

    def lock(self, deadline: float, cancelled: threading.Event | None = None) -> Held | None:
        """Take the entry's exclusive lock, waiting until ``deadline`` (monotonic); None if it did not
        come in time or ``cancelled`` was set."""
        ...

    def read(self) -> StoreState: ...

    def write(self, state: StoreState) -> None: ...

    def interest(self) -> Held:
        """Claim that this process uses, or is about to use, some session of this identity."""
        ...

    def claim(self, session: StoredSession) -> Held:
        """Claim that this process uses ``session``."""
        ...

    def idle(self) -> bool:
        """True if no live process holds an interest in this identity."""
        ...

    def unused(self, session: StoredSession) -> bool:
        """True if no live process holds a claim on ``session``."""
        ...

    def forget(self, session: StoredSession) -> None:
        """Drop what the store keeps about ``session``'s users (it is gone)."""
        ...

    def steward_guard(self) -> Held | None:
        """The steward's exclusive claim on this entry, or None if another steward has it."""
        ...

    def alive(self) -> bool:
        """False once the store is gone for good (the steward then stops looking after it)."""
        ...

    def ticket(self) -> dict[str, Any]:
        """JSON-able data from which :func:`~.config.reopen_entry` reopens this entry in another
        process (the steward). Never the PartnerOS password."""
        ...


class Lease:
    """This process's use of a stored session: a claim on the session and an interest in the identity,
    both dropped by :meth:`drop` (or by the process's death)."""

    def __init__(self, entry: StoreEntry, session: StoredSession, claim: Held, interest: Held) -> None:
        self.entry = entry
        self.session = session
        self._claim: Held | None = claim
        self._interest: Held | None = interest

    @property
    def held(self) -> bool:
        return self._claim is not None

    def drop(self) -> None:
        claim, self._claim = self._claim, None
        interest, self._interest = self._interest, None
        if claim is not None:
            claim.release()
        if interest is not None:
            interest.release()


__all__ = ["Held", "Lease", "StoreBusy", "StoreEntry", "StoreRefused", "StoreUnavailable"]
