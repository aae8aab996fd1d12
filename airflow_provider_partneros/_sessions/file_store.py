"""The host's session store: small files in a private directory, shared by the processes of one host.

Files of one identity (``<entry>`` is a keyed hash, revealing neither user nor password):

``.key``
    32 random bytes, the key of those hashes.
``<entry>.lock``
    the entry's lock (``flock``); the kernel drops it when its holder dies.
``<entry>.json``
    the :class:`~.records.StoreState`: cookies and timestamps, never the password.
``<entry>.<sid>.users`` / ``<entry>.users``
    one shared ``flock`` per process using session ``sid`` / this identity: "is anyone still using
    it?" is a non-blocking exclusive lock attempt, and a SIGKILLed user stops counting at once.
``<entry>.steward``
    held by the entry's one steward process.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros._sessions.records import StoredSession, StoreState
from airflow_provider_partneros._sessions.store import Held, StoreRefused

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no store, every task signs in on its own
    fcntl = None  # type: ignore[assignment]


def default_directory() -> Path:
    """Per user and gone after a reboot: ``$XDG_RUNTIME_DIR`` (a tmpfs) when there is one, else the
    system temp directory with the user id in the name."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "airflow-partneros"
    return Path(tempfile.gettempdir()) / f"airflow-partneros-{os.getuid()}"


def fix_hint(path: Path) -> str:
    return (
        f"Fix: remove {path} (it is recreated safely), or set [partneros] session_dir "
        "(AIRFLOW__PARTNEROS__SESSION_DIR) to a directory only this user can use."
    )


def check_owned_private(path: Path, st: os.stat_result, what: str) -> None:
    if st.st_uid != os.getuid():
        raise StoreRefused(f"{what} {path} belongs to another user (uid {st.st_uid}). {fix_hint(path)}")
    if st.st_mode & 0o077:
        raise StoreRefused(
            f"{what} {path} can be read or written by other users (mode {stat.S_IMODE(st.st_mode):o}). "
            f"{fix_hint(path)}"
        )


def open_private(path: Path, flags: int) -> int:
    """Open a store file: no symlinks followed, created 0600, and checked to be ours and private."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise StoreRefused(f"{path} is a symlink. {fix_hint(path)}") from None
        if isinstance(err, FileExistsError | FileNotFoundError):
            raise
        raise StoreRefused(f"cannot open {path} ({err.strerror}). {fix_hint(path)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreRefused(f"{path} is not a regular file. {fix_hint(path)}")
        check_owned_private(path, st, "the session store file")
    except BaseException:
        os.close(fd)
        raise
    return fd


class FileStore:
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
                f"cannot create the session store {directory} ({err.strerror}). {fix_hint(directory)}"
            ) from None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise StoreRefused(
                f"the session store {directory} is a symlink or not a directory. {fix_hint(directory)}"
            )
        check_owned_private(directory, st, "the session store")
        self._key = self._read_key()

    def _read_key(self) -> bytes:
        path = self.directory / ".key"
        try:
            fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
        for _ in range(50):  # another process may have created it a moment ago and be writing it
            with os.fdopen(open_private(path, os.O_RDONLY), "rb") as key_file:
                key = key_file.read()
            if len(key) == 32:
                return key
            time.sleep(0.01)
        raise StoreRefused(f"the session store key {path} is damaged. {fix_hint(path)}")

    def entry(self, settings: PartnerOSSettings) -> FileEntry:
        """The entry for one identity: base URL, login, organization, TLS setting and the password,
        combined under the store's secret key (another password or user never shares a session)."""
        identity = settings.identity_json()
        name = hmac.new(self._key, identity.encode(), hashlib.sha256).hexdigest()[:40]
        return FileEntry(self.directory, name)


class FileHeld:
    """A ``flock`` held through an open descriptor; closing the descriptor drops it."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class FileEntry:
    """The files of one identity in a host's store. Every method but :meth:`lock` is quick file I/O."""

    scope = "host"

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name

    def _path(self, suffix: str) -> Path:
        return self.directory / f"{self.name}{suffix}"

    def lock(self, deadline: float, cancelled: threading.Event | None = None) -> Held | None:
        assert fcntl is not None
        fd = open_private(self._path(".lock"), os.O_RDWR | os.O_CREAT)
        pause = 0.005
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return FileHeld(fd)
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

    def read(self) -> StoreState:
        try:
            fd = open_private(self._path(".json"), os.O_RDONLY)
        except FileNotFoundError:
            return StoreState()
        with os.fdopen(fd, "r", encoding="utf-8") as f:
            return StoreState.from_json(f.read())

    def write(self, state: StoreState) -> None:
        """Atomically (write a private temp file, then rename over the old one)."""
        tmp = self._path(f".json.{secrets.token_hex(8)}.tmp")
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(state.to_json())
        os.replace(tmp, self._path(".json"))

    def interest(self) -> Held:
        return FileHeld(self._shared_lock(".users"))

    def claim(self, session: StoredSession) -> Held:
        return FileHeld(self._shared_lock(f".{session.sid}.users"))

    def _shared_lock(self, suffix: str) -> int:
        assert fcntl is not None
        fd = open_private(self._path(suffix), os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_SH)  # never waits: exclusive attempts are non-blocking and brief
        return fd

    def idle(self) -> bool:
        return self._unused(".users")

    def unused(self, session: StoredSession) -> bool:
        return self._unused(f".{session.sid}.users")

    def _unused(self, suffix: str) -> bool:
        assert fcntl is not None
        try:
            fd = open_private(self._path(suffix), os.O_RDWR | os.O_CREAT)
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

    def steward_guard(self) -> Held | None:
        assert fcntl is not None
        if not self.directory.is_dir():
            return None
        try:
            fd = open_private(self._path(".steward"), os.O_RDWR | os.O_CREAT)
        except (StoreRefused, OSError):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return FileHeld(fd)

    def alive(self) -> bool:
        """False once the store directory is gone (the steward then has nothing to look after)."""
        return self.directory.is_dir()

    def ticket(self) -> dict[str, Any]:
        return {"kind": "file", "directory": str(self.directory), "entry": self.name}


__all__ = ["FileEntry", "FileHeld", "FileStore", "default_directory", "open_private"]
