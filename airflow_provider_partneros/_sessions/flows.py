"""The shared session's lifecycle decisions, for any store backend and either transport; no I/O.

Reuse the current session; replace it after ``session_max_age`` or after the server refused it, with
one sign-in for everyone sharing the store (single flight under the entry's lock); reuse a sign-in
failure met moments ago instead of trying again; sign out replaced sessions no one uses; keep an
unused one ``session_linger`` seconds for the next task, then let the steward sign it out.

Each flow is a generator that yields actions and receives their results, like ``_protocol``'s:

* :class:`StoreIO` - call a store operation and reply with its result. The sync transport calls it;
  the async one runs it in a worker thread, so a slow store never blocks an event loop.
* :class:`LockEntry` - wait for the entry's lock (it may take long); reply with it or None.
* :class:`SignIn` / :class:`SignOut` / :class:`StartSteward` - network and process work.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_partneros import exceptions
from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros._sessions.records import CookieRecord, StoredSession, StoreState
from airflow_provider_partneros._sessions.store import (
    Held,
    Lease,
    StoreBusy,
    StoreEntry,
    StoreRefused,
)
from airflow_provider_partneros.exceptions import PartnerOSError

LOCK_WAIT = 120.0
"""Least wait for another process's sign-in; :func:`lock_wait` raises it for slow connections."""
FATAL_FAILURE_REUSE = 10.0
"""A refused sign-in (wrong password...) fails the processes queued behind it for this long: 100
tasks starting together must not turn one refusal into 100 attempts against the rate limit."""
TRANSIENT_FAILURE_REUSE = 2.0
STEWARD_STARTUP = 3.0
"""Seconds a just-started steward may take to hold its guard; no second one is started meanwhile (one
started anyway exits at once)."""


def lock_wait(settings: PartnerOSSettings) -> float:
    """How long to wait for the process signing in for everyone: its sign-in, however long it waits
    out the sign-in limit (``sign_in_patience``), and the organization switch with every retry the
    connection allows, twice over. Giving up sooner would make every waiter sign in on its own, the
    storm the store exists to prevent."""
    from airflow_provider_partneros._protocol import MAX_RETRY_DELAY, sign_in_patience

    one_exchange = (settings.timeout + MAX_RETRY_DELAY) * (settings.max_retries + 1)
    return max(LOCK_WAIT, sign_in_patience(settings) + 2 * 2 * one_exchange)


# --- actions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreIO:
    """Call ``function(*args)`` (a store operation: quick, but I/O) and reply with its result."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class LockEntry:
    """Reply with ``entry.lock(deadline)`` (a :class:`Held` or None): it may wait until ``deadline``."""

    entry: StoreEntry
    deadline: float


@dataclass(frozen=True)
class SignIn:
    """Sign in with a fresh, empty cookie jar; reply with its cookies (``cookie_records``)."""

    scope: str | None = None
    """Who will share it, for the log line: ``"host"``, ``"deployment"``, or None (the holder alone)."""


@dataclass(frozen=True)
class SignOut:
    """Sign out the session these cookies carry (best effort, bounded); reply with anything."""

    cookies: tuple[CookieRecord, ...]


@dataclass(frozen=True)
class StartSteward:
    """Start the steward for this entry (a detached process, see :mod:`.steward`) that signs the
    session out once it has been unused for the linger time or reached its max age."""

    entry: StoreEntry


StoreAction = StoreIO | LockEntry | SignIn | SignOut | StartSteward
StoreFlow = Generator[StoreAction, Any, Any]


def drive(flow: Generator[Any, Any, Any], perform: Callable[[Any], Any]) -> Any:
    """Run a flow to its end in this thread: ``perform`` each action and send back its result, or
    throw its error back into the flow (which decides whether that error matters)."""
    result: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                action = flow.throw(error) if error is not None else flow.send(result)
            except StopIteration as stop:
                return stop.value
            result, error = None, None
            try:
                result = perform(action)
            except Exception as err:
                error = err
    finally:
        flow.close()


# --- flows ----------------------------------------------------------------------------------------------


def acquire_flow(
    entry: StoreEntry,
    *,
    max_age: float,
    linger: float = 0.0,
    stale_sid: str | None = None,
    wait: float = LOCK_WAIT,
    clock: Callable[[], float] = time.time,
) -> StoreFlow:
    """Return a :class:`Lease` on the store's session for this identity, signing in only if needed.

    Reuses the current session unless it is older than ``max_age`` or is ``stale_sid`` (the server
    refused it). Replaces it under the lock, so only one process signs in and the rest wait and
    reuse the result. Rotation waits while a retired session is still in use, so at most two live
    sessions exist per identity. On the way out, retired sessions no one uses are signed out.
    """
    interest: Held = yield StoreIO(entry.interest)
    try:
        lock: Held | None = yield LockEntry(entry, time.monotonic() + wait)
    except BaseException:
        interest.release()
        raise
    if lock is None:
        interest.release()
        raise StoreBusy(f"the session store entry stayed locked for {wait:.0f} s")
    lease: Lease | None = None
    try:
        lease = yield from _under_lock(
            lock, _acquire_locked(entry, interest, max_age, linger, stale_sid, clock)
        )
        return lease
    finally:
        if lease is None:
            interest.release()


def _acquire_locked(
    entry: StoreEntry,
    interest: Held,
    max_age: float,
    linger: float,
    stale_sid: str | None,
    clock: Callable[[], float],
) -> StoreFlow:
    state: StoreState = yield StoreIO(entry.read)
    now = clock()
    current = state.current
    if current is not None and current.sid == stale_sid:
        state.retired.append(StoredSession(current.sid, current.created, current.cookies, dead=True))
        current = state.current = None
    busy_retired = False
    for session in state.retired:
        busy_retired = busy_retired or not (yield StoreIO(entry.unused, (session,)))
    if current is not None and current.age(now) >= max_age and not busy_retired:
        state.retired.append(current)
        current = state.current = None
    if current is None:
        raise_recent_failure(state.failure, clock(), entry.scope)
        try:
            cookies = yield SignIn(entry.scope)
        except PartnerOSError as err:
            state.failure = failure_record(err, clock())
            yield StoreIO(entry.write, (state,))
            raise
        current = state.current = StoredSession(secrets.token_hex(8), clock(), tuple(cookies))
        state.failure = None
        if linger > 0:
            yield from _start_steward(entry, state, clock())
    claim: Held = yield StoreIO(entry.claim, (current,))
    lease = Lease(entry, current, claim, interest)
    state.idle_since = None
    yield from _sign_out_unused(entry, state, keep_current=True)
    yield StoreIO(entry.write, (state,))
    return lease


def _under_lock(lock: Held, body: StoreFlow) -> StoreFlow:
    """Run ``body`` and then release ``lock`` through the transport (a store call like any other), or
    at once if the flow is being closed (nothing can be yielded then)."""
    try:
        result = yield from body
    except GeneratorExit:
        lock.release()
        raise
    except BaseException:
        yield StoreIO(lock.release)
        raise
    yield StoreIO(lock.release)
    return result


@dataclass(frozen=True)
class Obtained:
    """What :func:`obtain_flow` got: the cookies to put in the jar, and how it got them."""

    cookies: tuple[CookieRecord, ...]
    lease: Lease | None
    """The store's shared session, or None for a session of the holder's own."""
    joined_age: float | None = None
    """Age of a shared session the holder did not use before (for the log), else None."""
    problems: tuple[tuple[StoreEntry, Exception], ...] = field(default=())
    """Stores that could not be used this time, and why (the holder decides when to try them again)."""


def obtain_flow(
    entries: Sequence[StoreEntry],
    *,
    old: Lease | None,
    refused: bool,
    max_age: float,
    linger: float,
    wait: float = LOCK_WAIT,
    clock: Callable[[], float] = time.time,
) -> StoreFlow:
    """A session for a holder (a hook, or a triggerer's shared session) that has ``old`` or none: the
    shared one of the first store in ``entries`` that works (``refused``: the server refused ``old``),
    else a sign-in of the holder's own. Returns :class:`Obtained`; the holder releases ``old``
    (:func:`release_flow`) once the new cookies are in its jar."""
    problems: list[tuple[StoreEntry, Exception]] = []
    for entry in entries:
        stale_sid = old.session.sid if refused and old is not None and old.entry is entry else None
        try:
            lease: Lease = yield from acquire_flow(
                entry, max_age=max_age, linger=linger, stale_sid=stale_sid, wait=wait, clock=clock
            )
        except (StoreRefused, StoreBusy, OSError) as err:
            problems.append((entry, err))
            continue
        is_new = old is None or old.session.sid != lease.session.sid
        age = max(lease.session.age(clock()), 0.0) if is_new else None
        return Obtained(lease.session.cookies, lease, joined_age=age, problems=tuple(problems))
    cookies = yield SignIn(None)
    return Obtained(tuple(cookies), None, problems=tuple(problems))


def release_flow(lease: Lease, *, linger: float = 0.0, clock: Callable[[], float] = time.time) -> StoreFlow:
    """Stop using the session. Replaced sessions no one uses any more are signed out at once; the
    current one, once unused, is kept ``linger`` seconds for the next task (the steward signs it out
    then), or with no linger signed out by this last process out.

    Tasks that follow each other (a scheduler starting mapped tasks one by one) so reuse one session,
    and none outlives its use by much: the PartnerOS docs ask for short-lived sessions.
    """
    entry = lease.entry
    yield StoreIO(lease.drop)
    lock: Held | None = yield LockEntry(entry, time.monotonic() + LOCK_WAIT)
    if lock is None:  # someone else holds it for long; whoever comes next signs out what is unused
        return
    yield from _under_lock(lock, _release_locked(entry, linger, clock))


def _release_locked(entry: StoreEntry, linger: float, clock: Callable[[], float]) -> StoreFlow:
    state: StoreState = yield StoreIO(entry.read)
    yield from _sign_out_unused(entry, state, keep_current=linger > 0)
    if state.current is not None and (yield StoreIO(entry.idle)):
        state.idle_since = now = clock()
        starting = state.steward_started is not None and 0 <= now - state.steward_started < STEWARD_STARTUP
        if not starting:
            yield from _ensure_steward(entry, state, now)
    yield StoreIO(entry.write, (state,))


def _ensure_steward(entry: StoreEntry, state: StoreState, now: float) -> StoreFlow:
    """Start a steward for a session left lingering if none runs: the one its sign-in started may be
    gone with its host (a KubernetesExecutor pod ends with its task, and everything in it)."""
    guard: Held | None = yield StoreIO(entry.steward_guard)
    if guard is None:
        return  # a steward looks after it
    yield StoreIO(guard.release)
    yield from _start_steward(entry, state, now)


def _start_steward(entry: StoreEntry, state: StoreState, now: float) -> StoreFlow:
    state.steward_started = now
    with contextlib.suppress(Exception):  # without a steward, the next visitor cleans up
        yield StartSteward(entry)


def steward_flow(
    entry: StoreEntry, *, max_age: float, linger: float, clock: Callable[[], float] = time.time
) -> StoreFlow:
    """One round of the steward: sign out replaced sessions no one uses, and the current one once it
    has been unused for ``linger`` seconds or is ``max_age`` old. Returns False when nothing is left
    to look after (the steward then exits)."""
    lock: Held | None = yield LockEntry(entry, time.monotonic() + 1.0)
    if lock is None:
        return True
    busy: bool = yield from _under_lock(lock, _steward_locked(entry, max_age, linger, clock))
    return busy


def _steward_locked(
    entry: StoreEntry, max_age: float, linger: float, clock: Callable[[], float]
) -> StoreFlow:
    state: StoreState = yield StoreIO(entry.read)
    before = state.to_json()
    yield from _sign_out_unused(entry, state, keep_current=True)
    current = state.current
    if current is not None and (yield StoreIO(entry.idle)):
        now = clock()
        if state.idle_since is None:  # its last user was killed before it could say so
            state.idle_since = now
        if now - state.idle_since >= linger or current.age(now) >= max_age:
            yield from _end(entry, current)
            state.current = None
    if state.to_json() != before:  # a round that changes nothing writes nothing
        yield StoreIO(entry.write, (state,))
    return state.current is not None or bool(state.retired)


def _sign_out_unused(entry: StoreEntry, state: StoreState, *, keep_current: bool) -> StoreFlow:
    """Sign out (or, for refused ones, just forget) the sessions no live process holds a claim on.

    The current session goes too (unless ``keep_current``) when no process of this identity uses or
    waits for any session: one still holding a retired or refused session, or queued for the lock,
    is about to use the current one.
    """
    for session in list(state.retired):
        if (yield StoreIO(entry.unused, (session,))):
            yield from _end(entry, session)
            state.retired.remove(session)
    current = state.current
    if not keep_current and current is not None and (yield StoreIO(entry.idle)):
        yield from _end(entry, current)
        state.current = None


def _end(entry: StoreEntry, session: StoredSession) -> StoreFlow:
    if not session.dead:
        with contextlib.suppress(Exception):  # a sign-out is a courtesy; it must not fail a task
            yield SignOut(session.cookies)
    yield StoreIO(entry.forget, (session,))


# --- failures shared through the store ------------------------------------------------------------------


def failure_record(err: PartnerOSError, now: float) -> dict[str, Any]:
    return {
        "at": now,
        "error_class": type(err).__name__,
        "message": err.message,
        "status": err.status,
        "code": err.code,
        "fatal": not err.retryable,
        "retry_after": getattr(err, "retry_after", None),
    }


def raise_recent_failure(failure: dict[str, Any] | None, now: float, scope: str = "host") -> None:
    """Re-raise a sign-in failure another process met moments ago instead of trying again."""
    if not failure:
        return
    reuse = FATAL_FAILURE_REUSE if failure.get("fatal") else TRANSIENT_FAILURE_REUSE
    if not 0 <= now - float(failure.get("at", 0)) < reuse:
        return
    cls = getattr(exceptions, str(failure.get("error_class")), None)
    if not (isinstance(cls, type) and issubclass(cls, PartnerOSError)):
        cls = exceptions.PartnerOSUnavailableError
    kwargs: dict[str, Any] = {"status": failure.get("status"), "code": failure.get("code")}
    if issubclass(cls, exceptions.PartnerOSRateLimitedError):
        kwargs["retry_after"] = failure.get("retry_after")
    where = "in this deployment" if scope == "deployment" else "on this host"
    message = f"{failure.get('message')} (another task {where} met this a moment ago; not tried again)"
    raise cls(message, endpoint="/api/auth/sign-in/email", method="POST", **kwargs)


__all__ = [
    "LOCK_WAIT",
    "LockEntry",
    "Obtained",
    "SignIn",
    "SignOut",
    "StartSteward",
    "StoreAction",
    "StoreFlow",
    "StoreIO",
    "acquire_flow",
    "drive",
    "lock_wait",
    "obtain_flow",
    "release_flow",
    "steward_flow",
]
