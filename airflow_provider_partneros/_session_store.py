"""One signed-in PartnerOS session per host and identity, shared by every task process and triggerer.

PartnerOS allows 3 sign-ins per 10 s per client IP, and every task on a host shares that IP. So the
processes of one host (one OS user, one ``[partneros] session_dir``) that use the same credentials
share one session, kept in small files:

``.key``
    32 random bytes; entry names are keyed hashes, so they reveal neither user nor password.
``<entry>.lock``
    the entry's lock (``flock``): whoever holds it may sign in, rotate or sign out. The kernel
    drops it when its holder dies, so a killed task never blocks the others.
``<entry>.json``
    the current session (cookies exactly as the server set them, creation time), sessions retired
    by rotation or refused by the server, and the last failed sign-in. Never the password.
``<entry>.<sid>.users``
    one shared ``flock`` per process using session ``sid``: "is anyone still using it?" is a
    non-blocking exclusive lock attempt, and a SIGKILLed user stops counting at once.
``<entry>.users``
    the same for the identity as a whole, taken before waiting for the lock: the last process out
    signs the session out only if no other process uses or waits for one.

The decisions (reuse, rotate after ``session_max_age``, replace after a 401, sign out the sessions
no one uses, keep an unused one ``session_linger`` seconds for the next task) are the flows
:func:`acquire_flow`, :func:`release_flow` and :func:`steward_flow`; the steward is a small detached
process (``_session_steward``) that signs out a session once it has lingered unused. Like ``_protocol``'s
flows they do no network I/O: they yield :class:`SignIn`, :class:`SignOut` and :class:`LockEntry`
actions, which the sync hook and the async transport perform in their own way.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import http.cookiejar
import json
import os
import secrets
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros.exceptions import PartnerOSError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no store, every task signs in on its own
    fcntl = None  # type: ignore[assignment]

CONFIG_SECTION = "partneros"
CONFIG_OPTION = "session_dir"
LINGER_OPTION = "session_linger"
DEFAULT_LINGER = 60.0
"""Seconds an unused shared session is kept for the host's next task before it is signed out."""
LOCK_WAIT = 120.0
"""Least wait for another process's sign-in; :func:`lock_wait` raises it for slow connections."""
FATAL_FAILURE_REUSE = 10.0
"""A refused sign-in (wrong password...) fails the processes queued behind it for this long: 100
tasks starting together must not turn one refusal into 100 attempts against the rate limit."""
TRANSIENT_FAILURE_REUSE = 2.0
_STATE_VERSION = 1


def lock_wait(settings: PartnerOSSettings) -> float:
    """How long to wait for the process signing in for everyone: its sign-in (and organization
    switch) with every in-call retry and wait the connection allows, twice over. Giving up sooner
    would make every waiter sign in on its own, the storm the store exists to prevent."""
    from airflow_provider_partneros._protocol import MAX_RETRY_DELAY

    one_exchange = (settings.timeout + MAX_RETRY_DELAY) * (settings.max_retries + 1)
    return max(LOCK_WAIT, 2 * 2 * one_exchange)


class StoreRefused(Exception):
    """The store directory or a file in it is unsafe or unusable; the message says which and the fix."""


# --- what the store keeps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CookieRecord:
    """One cookie with every attribute ``http.cookiejar`` keeps, so it goes back exactly as set."""

    name: str
    value: str
    domain: str
    path: str
    secure: bool = False
    expires: int | None = None
    port: str | None = None
    domain_specified: bool = False
    domain_initial_dot: bool = False
    path_specified: bool = True
    rest: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print a cookie value
        return f"CookieRecord(name={self.name!r}, domain={self.domain!r}, value='***')"


def cookie_records(jar: http.cookiejar.CookieJar) -> tuple[CookieRecord, ...]:
    """The cookies of a ``requests`` or ``httpx`` jar (both are ``http.cookiejar`` underneath)."""
    return tuple(
        CookieRecord(
            name=c.name,
            value=c.value or "",
            domain=c.domain,
            path=c.path,
            secure=bool(c.secure),
            expires=c.expires,
            port=c.port,
            domain_specified=bool(c.domain_specified),
            domain_initial_dot=bool(c.domain_initial_dot),
            path_specified=bool(c.path_specified),
            rest={k: v for k, v in getattr(c, "_rest", {}).items() if isinstance(v, (str, type(None)))},
        )
        for c in jar
    )


def install_cookies(jar: http.cookiejar.CookieJar, records: Sequence[CookieRecord]) -> None:
    """Make ``jar`` hold exactly ``records``, replacing cookie by cookie: a request running on another
    thread meanwhile sees the old session or the new one, never an empty jar."""
    keep = {(r.domain, r.path, r.name) for r in records}
    for record in records:
        jar.set_cookie(
            http.cookiejar.Cookie(
                version=0,
                name=record.name,
                value=record.value,
                port=record.port,
                port_specified=record.port is not None,
                domain=record.domain,
                domain_specified=record.domain_specified,
                domain_initial_dot=record.domain_initial_dot,
                path=record.path,
                path_specified=record.path_specified,
                secure=record.secure,
                expires=record.expires,
                discard=record.expires is None,
                comment=None,
                comment_url=None,
                rest=dict(record.rest),
            )
        )
    for cookie in list(jar):
        if (cookie.domain, cookie.path, cookie.name) not in keep:
            with contextlib.suppress(KeyError):
                jar.clear(cookie.domain, cookie.path, cookie.name)


@dataclass(frozen=True)
class StoredSession:
    """A session in the store. ``sid`` names it in the store only; it is not the server's token."""

    sid: str
    created: float
    cookies: tuple[CookieRecord, ...]
    dead: bool = False
    """Refused by the server (401): it needs no sign-out, only forgetting."""

    def age(self, now: float) -> float:
        return now - self.created


@dataclass
class _State:
    current: StoredSession | None = None
    retired: list[StoredSession] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    idle_since: float | None = None
    """When the last process stopped using the current session (None while one uses it)."""

    def to_json(self) -> str:
        def session(s: StoredSession) -> dict[str, Any]:
            return {**asdict(s), "cookies": [asdict(c) for c in s.cookies]}

        return json.dumps(
            {
                "version": _STATE_VERSION,
                "current": session(self.current) if self.current else None,
                "retired": [session(s) for s in self.retired],
                "failure": self.failure,
                "idle_since": self.idle_since,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> _State:
        doc = json.loads(text) if text.strip() else {}
        if not isinstance(doc, dict) or doc.get("version") != _STATE_VERSION:
            return cls()

        def session(d: dict[str, Any]) -> StoredSession:
            cookies = tuple(CookieRecord(**c) for c in d["cookies"])
            return StoredSession(str(d["sid"]), float(d["created"]), cookies, bool(d.get("dead")))

        return cls(
            current=session(doc["current"]) if doc.get("current") else None,
            retired=[session(d) for d in doc.get("retired") or []],
            failure=doc.get("failure"),
            idle_since=float(doc["idle_since"]) if doc.get("idle_since") is not None else None,
        )


# --- where the store lives ---------------------------------------------------------------------------


def default_directory() -> Path:
    """Per user and gone after a reboot: ``$XDG_RUNTIME_DIR`` (a tmpfs) when there is one, else the
    system temp directory with the user id in the name."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "airflow-partneros"
    return Path(tempfile.gettempdir()) / f"airflow-partneros-{os.getuid()}"


def _config_value(option: str) -> str:
    """``[partneros] <option>``: its environment variable first (read on every call, so tests and
    deployments can set it per process), then Airflow's configuration."""
    value = os.environ.get(f"AIRFLOW__{CONFIG_SECTION.upper()}__{option.upper()}")
    if value is None:
        try:
            from airflow.configuration import conf

            value = conf.get(CONFIG_SECTION, option, fallback=None)
        except Exception:  # no Airflow config to read (e.g. outside a deployment): use the default
            value = None
    return (value or "").strip()


def configured_directory() -> Path:
    """``[partneros] session_dir`` (``AIRFLOW__PARTNEROS__SESSION_DIR``), or :func:`default_directory`."""
    value = _config_value(CONFIG_OPTION)
    return Path(os.path.expanduser(value)) if value else default_directory()


def configured_linger() -> float:
    """``[partneros] session_linger``: seconds an unused session waits for the next task (0: the last
    task out signs it out at once). Unreadable values mean the default."""
    value = _config_value(LINGER_OPTION)
    try:
        linger = float(value) if value else DEFAULT_LINGER
    except ValueError:
        return DEFAULT_LINGER
    return linger if 0 <= linger < float("inf") else DEFAULT_LINGER


def _fix(path: Path) -> str:
    return (
        f"Fix: remove {path} (it is recreated safely), or set [partneros] session_dir "
        "(AIRFLOW__PARTNEROS__SESSION_DIR) to a directory only this user can use."
    )


def _check_owned_private(path: Path, st: os.stat_result, what: str) -> None:
    if st.st_uid != os.getuid():
        raise StoreRefused(f"{what} {path} belongs to another user (uid {st.st_uid}). {_fix(path)}")
    if st.st_mode & 0o077:
        raise StoreRefused(
            f"{what} {path} can be read or written by other users (mode {stat.S_IMODE(st.st_mode):o}). "
            f"{_fix(path)}"
        )


class SessionStore:
    """The store directory, created 0700 and checked: this user's own, private, no symlink."""

    def __init__(self, directory: Path) -> None:
        if fcntl is None:  # pragma: no cover - not POSIX
            raise StoreRefused("the session store needs POSIX file locks (fcntl), which this system lacks.")
        self.directory = directory
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.lstat(directory)
        except OSError as err:
            raise StoreRefused(
                f"cannot create the session store {directory} ({err.strerror}). {_fix(directory)}"
            ) from None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise StoreRefused(
                f"the session store {directory} is a symlink or not a directory. {_fix(directory)}"
            )
        _check_owned_private(directory, st, "the session store")
        self._key = self._read_key()

    def _read_key(self) -> bytes:
        path = self.directory / ".key"
        try:
            fd = _open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
        for _ in range(50):  # another process may have created it a moment ago and be writing it
            with os.fdopen(_open_private(path, os.O_RDONLY), "rb") as key_file:
                key = key_file.read()
            if len(key) == 32:
                return key
            time.sleep(0.01)
        raise StoreRefused(f"the session store key {path} is damaged. {_fix(path)}")

    def entry(self, settings: PartnerOSSettings) -> StoreEntry:
        """The entry for one identity: base URL, login, organization, TLS setting and the password,
        combined under the store's secret key (another password or user never shares a session)."""
        identity = json.dumps(
            [
                settings.base_url,
                settings.email,
                settings.organization_id,
                str(settings.verify),
                settings.password,
            ]
        )
        name = hmac.new(self._key, identity.encode(), hashlib.sha256).hexdigest()[:40]
        return StoreEntry(self.directory, name)


def open_store(settings: PartnerOSSettings) -> StoreEntry:
    """The store entry for ``settings`` in the configured directory; :class:`StoreRefused` if unsafe."""
    return SessionStore(configured_directory()).entry(settings)


def _open_private(path: Path, flags: int) -> int:
    """Open a store file: no symlinks followed, created 0600, and checked to be ours and private."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise StoreRefused(f"{path} is a symlink. {_fix(path)}") from None
        if isinstance(err, FileExistsError | FileNotFoundError):
            raise
        raise StoreRefused(f"cannot open {path} ({err.strerror}). {_fix(path)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreRefused(f"{path} is not a regular file. {_fix(path)}")
        _check_owned_private(path, st, "the session store file")
    except BaseException:
        os.close(fd)
        raise
    return fd


# --- one identity's files ------------------------------------------------------------------------------


class EntryLock:
    """The entry's exclusive lock; :meth:`release` is idempotent."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock


class Lease:
    """This process's use of a stored session: shared locks the kernel drops if the process dies, one
    on the session and one on the identity (see :meth:`StoreEntry.interest`)."""

    def __init__(self, session: StoredSession, fd: int, interest: Interest) -> None:
        self.session = session
        self._fd: int | None = fd
        self._interest = interest

    @property
    def held(self) -> bool:
        return self._fd is not None

    def drop(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        self._interest.drop()


class Interest:
    """A process's claim that it uses, or is about to use, some session of this identity."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def drop(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class StoreEntry:
    """The files of one identity in the store. All methods except :meth:`lock` are quick file I/O."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name

    def _path(self, suffix: str) -> Path:
        return self.directory / f"{self.name}{suffix}"

    def lock(self, deadline: float, cancelled: threading.Event | None = None) -> EntryLock | None:
        """Take the entry's lock, waiting until ``deadline`` (monotonic); None if it did not come."""
        assert fcntl is not None
        fd = _open_private(self._path(".lock"), os.O_RDWR | os.O_CREAT)
        pause = 0.005
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return EntryLock(fd)
                except BlockingIOError:
                    pass
                if time.monotonic() >= deadline or (cancelled is not None and cancelled.is_set()):
                    os.close(fd)
                    return None
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise

    def read(self) -> _State:
        try:
            fd = _open_private(self._path(".json"), os.O_RDONLY)
        except FileNotFoundError:
            return _State()
        with os.fdopen(fd, "r", encoding="utf-8") as f:
            text = f.read()
        try:
            return _State.from_json(text)
        except (ValueError, KeyError, TypeError):
            return _State()  # a damaged file only costs a sign-in

    def write(self, state: _State) -> None:
        """Atomically (write a private temp file, then rename over the old one)."""
        tmp = self._path(f".json.{secrets.token_hex(8)}.tmp")
        fd = _open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(state.to_json())
        os.replace(tmp, self._path(".json"))

    def interest(self) -> Interest:
        """Declare that this process uses (or waits for) a session of this identity. Taken before
        waiting for the lock, so the last user out does not sign out a session others queue for."""
        return Interest(self._shared_lock(".users"))

    def join(self, session: StoredSession, interest: Interest) -> Lease:
        return Lease(session, self._shared_lock(f".{session.sid}.users"), interest)

    def _shared_lock(self, suffix: str) -> int:
        assert fcntl is not None
        fd = _open_private(self._path(suffix), os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_SH)  # never waits: exclusive attempts are non-blocking and brief
        return fd

    def idle(self) -> bool:
        """True if no live process uses or waits for any session of this identity."""
        return self._unused(".users")

    def unused(self, session: StoredSession) -> bool:
        """True if no live process holds a lease on ``session`` (a brief exclusive lock attempt)."""
        return self._unused(f".{session.sid}.users")

    def _unused(self, suffix: str) -> bool:
        assert fcntl is not None
        try:
            fd = _open_private(self._path(suffix), os.O_RDWR | os.O_CREAT)
        except StoreRefused:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # also drops the exclusive lock if we got it
        return True

    def forget(self, session: StoredSession) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(f".{session.sid}.users"))


# --- the flows ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockEntry:
    """Reply with :meth:`StoreEntry.lock`'s result (an :class:`EntryLock` or None): it may wait."""

    entry: StoreEntry
    deadline: float


@dataclass(frozen=True)
class SignIn:
    """Sign in with a fresh, empty cookie jar; reply with its cookies (:func:`cookie_records`)."""

    shared: bool = True
    """For the log line: a session for the host's store, or one of the holder's own."""


@dataclass(frozen=True)
class SignOut:
    """Sign out the session these cookies carry (best effort, bounded); reply with anything."""

    cookies: tuple[CookieRecord, ...]


@dataclass(frozen=True)
class StartSteward:
    """Start the host's steward for this entry (a detached process, see ``_session_steward``) that
    signs the session out once it has been unused for the linger time or reached its max age."""

    entry: StoreEntry


StoreAction = LockEntry | SignIn | SignOut | StartSteward
StoreFlow = Generator[StoreAction, Any, Any]


class StoreBusy(Exception):
    """The entry's lock did not come in time (:func:`lock_wait`): fall back to a session of one's own."""


def acquire_flow(
    entry: StoreEntry,
    *,
    max_age: float,
    linger: float = 0.0,
    stale_sid: str | None = None,
    wait: float = LOCK_WAIT,
    clock: Callable[[], float] = time.time,
) -> StoreFlow:
    """Return a :class:`Lease` on the host's session for this identity, signing in only if needed.

    Reuses the current session unless it is older than ``max_age`` or is ``stale_sid`` (the server
    refused it). Replaces it under the lock, so only one process signs in and the rest wait and
    reuse the result. Rotation waits while a retired session is still in use, so at most two live
    sessions exist per identity. On the way out, retired sessions no one uses are signed out.
    """
    interest = entry.interest()
    try:
        lock: EntryLock | None = yield LockEntry(entry, time.monotonic() + wait)
    except BaseException:
        interest.drop()
        raise
    if lock is None:
        interest.drop()
        raise StoreBusy(f"the session store entry stayed locked for {wait:.0f} s")
    joined = False
    try:
        state = entry.read()
        now = clock()
        current = state.current
        if current is not None and current.sid == stale_sid:
            state.retired.append(StoredSession(current.sid, current.created, current.cookies, dead=True))
            current = state.current = None
        busy_retired = [s for s in state.retired if not entry.unused(s)]
        expired = current is not None and current.age(now) >= max_age
        if current is not None and expired and not busy_retired:
            state.retired.append(current)
            current = state.current = None
        if current is None:
            _raise_recent_failure(state.failure, clock())
            try:
                cookies = yield SignIn()
            except PartnerOSError as err:
                state.failure = _failure_record(err, clock())
                entry.write(state)
                raise
            current = state.current = StoredSession(secrets.token_hex(8), clock(), tuple(cookies))
            state.failure = None
            if linger > 0:
                with contextlib.suppress(Exception):  # without a steward, the next visitor cleans up
                    yield StartSteward(entry)
        lease = entry.join(current, interest)
        joined = True
        state.idle_since = None
        yield from _sign_out_unused(entry, state, keep_current=True)
        entry.write(state)
        return lease
    finally:
        lock.release()
        if not joined:
            interest.drop()


@dataclass(frozen=True)
class Obtained:
    """What :func:`obtain_flow` got: the cookies to put in the jar, and how it got them."""

    cookies: tuple[CookieRecord, ...]
    lease: Lease | None
    """The host's shared session, or None for a session of the holder's own."""
    joined_age: float | None = None
    """Age of a shared session the holder did not use before (for the log), else None."""
    store_failed: str | None = None
    """Why the store could not be used (warn once and stop using it), else None."""


def obtain_flow(
    entry: StoreEntry | None,
    *,
    old: Lease | None,
    refused: bool,
    max_age: float,
    linger: float,
    wait: float = LOCK_WAIT,
    clock: Callable[[], float] = time.time,
) -> StoreFlow:
    """A session for a holder (a hook, or a triggerer's shared session) that has ``old`` or none:
    the host's shared one when there is a store (``refused``: the server refused ``old``), else, or
    when the store turns out unusable, a sign-in of the holder's own. Returns :class:`Obtained`; the
    holder releases ``old`` (:func:`release_flow`) once the new cookies are in its jar."""
    failed: str | None = None
    if entry is not None:
        stale_sid = old.session.sid if refused and old is not None else None
        try:
            lease: Lease = yield from acquire_flow(
                entry, max_age=max_age, linger=linger, stale_sid=stale_sid, wait=wait, clock=clock
            )
        except (StoreRefused, StoreBusy, OSError) as err:
            failed = str(err)
        else:
            is_new = old is None or old.session.sid != lease.session.sid
            age = max(lease.session.age(clock()), 0.0) if is_new else None
            return Obtained(lease.session.cookies, lease, joined_age=age)
    cookies = yield SignIn(shared=False)
    return Obtained(tuple(cookies), None, store_failed=failed)


def release_flow(
    entry: StoreEntry, lease: Lease, *, linger: float = 0.0, clock: Callable[[], float] = time.time
) -> StoreFlow:
    """Stop using the session. Replaced sessions no one uses any more are signed out at once; the
    current one, once unused, is kept ``linger`` seconds for the host's next task (the steward signs
    it out then), or with no linger signed out by this last process out.

    Tasks that follow each other on a host (a scheduler starting mapped tasks one by one) so reuse
    one session, and none outlives its use by much: the PartnerOS docs ask for short-lived sessions.
    """
    lease.drop()
    lock: EntryLock | None = yield LockEntry(entry, time.monotonic() + LOCK_WAIT)
    if lock is None:  # someone else holds it for long; whoever comes next signs out what is unused
        return
    try:
        state = entry.read()
        yield from _sign_out_unused(entry, state, keep_current=linger > 0)
        if state.current is not None and entry.idle():
            state.idle_since = clock()
        entry.write(state)
    finally:
        lock.release()


def steward_flow(
    entry: StoreEntry, *, max_age: float, linger: float, clock: Callable[[], float] = time.time
) -> StoreFlow:
    """One round of the steward: sign out replaced sessions no one uses, and the current one once it
    has been unused for ``linger`` seconds or is ``max_age`` old. Returns False when nothing is left
    to look after (the steward then exits)."""
    lock: EntryLock | None = yield LockEntry(entry, time.monotonic() + 1.0)
    if lock is None:
        return True
    try:
        state = entry.read()
        before = state.to_json()
        yield from _sign_out_unused(entry, state, keep_current=True)
        current = state.current
        if current is not None and entry.idle():
            now = clock()
            if state.idle_since is None:  # its last user was killed before it could say so
                state.idle_since = now
            if now - state.idle_since >= linger or current.age(now) >= max_age:
                yield from _end(entry, current)
                state.current = None
        if state.to_json() != before:  # a round that changes nothing writes nothing
            entry.write(state)
        return state.current is not None or bool(state.retired)
    finally:
        lock.release()


def _sign_out_unused(entry: StoreEntry, state: _State, *, keep_current: bool) -> StoreFlow:
    """Sign out (or, for refused ones, just forget) the sessions no live process holds a lease on.

    The current session goes too (unless ``keep_current``) when no process of this identity uses or
    waits for any session: one still holding a retired or refused session, or queued for the lock,
    is about to use the current one.
    """
    for session in list(state.retired):
        if entry.unused(session):
            yield from _end(entry, session)
            state.retired.remove(session)
    current = state.current
    if not keep_current and current is not None and entry.idle():
        yield from _end(entry, current)
        state.current = None


def _end(entry: StoreEntry, session: StoredSession) -> StoreFlow:
    if not session.dead:
        with contextlib.suppress(Exception):  # a sign-out is a courtesy; it must not fail a task
            yield SignOut(session.cookies)
    entry.forget(session)


def _failure_record(err: PartnerOSError, now: float) -> dict[str, Any]:
    return {
        "at": now,
        "error_class": type(err).__name__,
        "message": err.message,
        "status": err.status,
        "code": err.code,
        "fatal": not err.retryable,
        "retry_after": getattr(err, "retry_after", None),
    }


def _raise_recent_failure(failure: dict[str, Any] | None, now: float) -> None:
    """Re-raise a sign-in failure another process met moments ago instead of trying again."""
    if not failure:
        return
    reuse = FATAL_FAILURE_REUSE if failure.get("fatal") else TRANSIENT_FAILURE_REUSE
    if not 0 <= now - float(failure.get("at", 0)) < reuse:
        return
    from airflow_provider_partneros import exceptions

    cls = getattr(exceptions, str(failure.get("error_class")), None)
    if not (isinstance(cls, type) and issubclass(cls, PartnerOSError)):
        cls = exceptions.PartnerOSUnavailableError
    kwargs: dict[str, Any] = {"status": failure.get("status"), "code": failure.get("code")}
    if issubclass(cls, exceptions.PartnerOSRateLimitedError):
        kwargs["retry_after"] = failure.get("retry_after")
    message = f"{failure.get('message')} (another task on this host met this a moment ago; not tried again)"
    raise cls(message, endpoint="/api/auth/sign-in/email", method="POST", **kwargs)


__all__ = [
    "CookieRecord",
    "Lease",
    "LockEntry",
    "Obtained",
    "SessionStore",
    "SignIn",
    "SignOut",
    "StartSteward",
    "StoreBusy",
    "StoreEntry",
    "StoreRefused",
    "acquire_flow",
    "configured_directory",
    "configured_linger",
    "cookie_records",
    "default_directory",
    "install_cookies",
    "lock_wait",
    "obtain_flow",
    "open_store",
    "release_flow",
    "steward_flow",
]
