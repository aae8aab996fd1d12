"""The deployment's session store: one Redis shared by every host, so a deployment signs in once.

Configured by ``[partneros] session_store_conn_id``, an Airflow connection of type ``redis`` (host,
port, login, password, ``{"db": 3}`` and TLS ``{"ssl": true, "ssl_cert_reqs": ..., "ssl_ca_certs":
...}`` in the extra, as the Redis provider keeps them; that provider is not needed). Needs the extra
``airflow-provider-partneros[redis]`` (``redis-py``) and a Redis (or Valkey) server 5 or newer.

Keys of one identity (``<e>`` is a keyed hash; in braces so Redis Cluster keeps them on one node)::

    partneros:{<e>}:state      the StoreState, encrypted (AES-GCM); expires STATE_TTL after its last write
    partneros:{<e>}:lock       the entry's lock: a random token, expiring LEASE_TTL after its last renewal
    partneros:{<e>}:users      sorted set: one random member per process interested in the identity
    partneros:{<e>}:c:<s>      sorted set: one member per process using the session <s> (a keyed hash)
    partneros:{<e>}:steward    the steward's guard: a random token, like the lock

Bound: whatever a process holds (lock, interest, claims, steward guard) it renews from one daemon
thread every :data:`HEARTBEAT_INTERVAL`; each expires :data:`LEASE_TTL` (10 s) after its last renewal,
measured by the Redis server's clock. So a SIGKILLed process blocks the lock, and counts as a user,
for at most 10 s. A live holder that cannot reach Redis for that long loses them too (another process
may then sign in: at worst one extra sign-in); a write under a lock someone else has taken since is
refused (:class:`StoreUnavailable`), never applied.

At rest: the record is encrypted and authenticated (AES-256-GCM) under a key derived (HKDF-SHA256) from
the identity, the PartnerOS password included, with the key name as associated data, so a record
altered or copied to another key reads as empty (it costs a sign-in, never trust). Key names are
HMACs under a second derived key. Nothing in Redis names the user, organization or URL, and the
password is never stored. Someone who can read Redis *and* knows the email, organization and URL
could still test password guesses offline against a record: keep Redis behind a password and TLS.

The steward's ticket (:meth:`RedisEntry.ticket`) carries the Redis connection, its password included,
and the entry's two derived keys, never the PartnerOS password; it travels to the steward through a
pipe, never to disk or a log.

No call waits on Redis longer than :data:`SOCKET_TIMEOUT` (and one reconnect); every Redis failure is
a :class:`StoreUnavailable` naming the problem and the server, never a password.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import random
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros._sessions.records import StoredSession, StoreState
from airflow_provider_partneros._sessions.store import Held, StoreRefused, StoreUnavailable
from airflow_provider_partneros.exceptions import PartnerOSConfigError

if TYPE_CHECKING:
    import redis

LEASE_TTL = 10.0
"""Seconds after its last renewal that a lock, interest, claim or steward guard expires: how long a
killed process can block the lock or count as a user."""
HEARTBEAT_INTERVAL = LEASE_TTL / 4
"""Seconds between renewals: a renewal may time out (:data:`SOCKET_TIMEOUT`) twice and still land."""
LOCK_POLL = 0.02
"""Longest pause between two attempts at a taken lock. A lock changes hands twice per task (take the
session, let it go): polling slower than that queues a crowd of tasks behind sleeping waiters (24 at
once, 100 ms polls: 6 s lost), while a poll is one cheap round trip for Redis."""
SOCKET_TIMEOUT = 2.0
"""Seconds to connect to Redis, and to wait for any one answer."""
STATE_TTL = 8 * 24 * 3600
"""Seconds a record is kept after its last write: longer than a PartnerOS session lives (7 days)."""
GIVE_UP = 60.0
"""Seconds of Redis failing without a break after which :meth:`RedisEntry.alive` says it is gone (the
steward then exits instead of polling a Redis that may never come back)."""
EXTRA_HINT = "pip install 'airflow-provider-partneros[redis]'"
KEY_PREFIX = "partneros"
DEFAULT_PORT = 6379
_SALT = b"airflow-provider-partneros/session-store/redis/v1"
_RECORD_FORMAT = b"\x01"
_NONCE_BYTES = 12


# --- where Redis is ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisConnection:
    """The Redis server of the store, as plain values (read from an Airflow ``redis`` connection)."""

    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    ssl: bool = False
    ssl_check_hostname: bool | None = None
    ssl_cert_reqs: str | None = None
    ssl_ca_certs: str | None = None
    ssl_ca_path: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @property
    def where(self) -> str:
        """For messages: ``rediss://host:port/db``, never the credentials."""
        return f"{'rediss' if self.ssl else 'redis'}://{self.host}:{self.port}/{self.db}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RedisConnection:
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise PartnerOSConfigError(f"the Redis session store connection's extra {name!r} is not true or false")


def redis_connection_from_airflow(conn: Any, extra: Mapping[str, Any] | None) -> RedisConnection:
    """The store's Redis from an Airflow connection of type ``redis`` (``conn``: its host, port, login
    and password; ``extra``: its extra as a dict). Sync and async callers fetch the connection in their
    own way and pass it here. :class:`PartnerOSConfigError` if a value is unusable."""
    extra = dict(extra or {})
    conn_id = getattr(conn, "conn_id", None) or "the Redis session store connection"
    host = (getattr(conn, "host", None) or "").strip()
    if not host:
        raise PartnerOSConfigError(f"{conn_id} has no host: set the Redis server's host name")
    try:
        port = int(getattr(conn, "port", None) or DEFAULT_PORT)
        db = int(extra.get("db") or 0)
    except (TypeError, ValueError):
        raise PartnerOSConfigError(f"{conn_id}: the port and the extra's 'db' must be integers") from None
    if not 0 < port < 65536 or db < 0:
        raise PartnerOSConfigError(f"{conn_id}: port {port} or database {db} is out of range")

    def text(name: str) -> str | None:
        value = extra.get(name)
        return None if value in (None, "") else str(value)

    check_hostname = extra.get("ssl_check_hostname")
    return RedisConnection(
        host=host,
        port=port,
        username=getattr(conn, "login", None) or None,
        password=getattr(conn, "password", None) or None,
        db=db,
        ssl=_flag(extra.get("ssl", False), "ssl"),
        ssl_check_hostname=None if check_hostname is None else _flag(check_hostname, "ssl_check_hostname"),
        ssl_cert_reqs=text("ssl_cert_reqs"),
        ssl_ca_certs=text("ssl_ca_certs"),
        ssl_ca_path=text("ssl_ca_path"),
        ssl_certfile=text("ssl_certfile"),
        ssl_keyfile=text("ssl_keyfile"),
    )


def _require_redis() -> None:
    try:
        import redis  # noqa: F401
    except ImportError:
        raise PartnerOSConfigError(
            "[partneros] session_store_conn_id is set, so the PartnerOS session store is Redis, but the "
            f"Python package redis is not installed. Install the extra: {EXTRA_HINT}"
        ) from None


@functools.lru_cache(maxsize=16)
def _client(conn: RedisConnection) -> redis.Redis:
    """One client (and connection pool, thread-safe) per server and process: tasks reuse connections."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    ssl: dict[str, Any] = {}
    if conn.ssl:
        ssl = {k: v for k, v in asdict(conn).items() if k.startswith("ssl_") and v is not None}
    return redis.Redis(
        **_quick_handshake(),
        host=conn.host,
        port=conn.port,
        db=conn.db,
        username=conn.username,
        password=conn.password,
        ssl=conn.ssl,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        # one immediate reconnect (a pooled connection may be stale after a Redis restart), never a
        # retry after a timeout: no call waits longer than twice SOCKET_TIMEOUT
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
        client_name="airflow-provider-partneros",
        protocol=2,  # AUTH alone, no HELLO: any Redis 5+, one answer less to parse
        **ssl,
    )


@functools.cache
def _quick_handshake() -> dict[str, Any]:
    """No ``CLIENT SETINFO`` library name and version: saves redis-py a package-metadata lookup and the
    server two commands per new client (1.5 ms of a task process's first store operation)."""
    import inspect

    import redis

    params = inspect.signature(redis.Redis.__init__).parameters
    if "driver_info" in params:  # redis-py 7+
        return {"driver_info": None}
    if "lib_name" in params:  # redis-py 5 and 6
        return {"lib_name": None, "lib_version": None}
    return {}


def _problem(conn: RedisConnection, err: BaseException, doing: str) -> StoreUnavailable:
    """A :class:`StoreUnavailable` naming the problem and the server, never a password."""
    import redis.exceptions as rex

    text = str(err)
    if conn.password:
        text = text.replace(conn.password, "***")
    code = text.split(" ", 1)[0]
    if isinstance(err, rex.AuthenticationError) or code in ("WRONGPASS", "NOAUTH", "NOPERM"):
        what = "refused the connection's user or password (authentication failed)"
    elif isinstance(err, rex.BusyLoadingError) or code == "LOADING":
        what = "is still loading its data"
    elif isinstance(err, rex.TimeoutError | TimeoutError):
        what = f"did not answer within {SOCKET_TIMEOUT:g} s (timed out)"
    elif isinstance(err, rex.ConnectionError | OSError):
        what = f"is unreachable ({text or type(err).__name__})"
    elif isinstance(err, rex.ReadOnlyError) or code == "READONLY":
        what = "is a read-only replica"
    else:
        what = f"failed: {type(err).__name__}: {text}"
    return StoreUnavailable(f"the Redis session store at {conn.where} {what}, while {doing}")


# --- keys ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryKeys:
    """What an entry needs to find and read its keys: derived from the identity, never the password."""

    record_key: bytes = field(repr=False)
    """AES-256-GCM key of the record."""
    name_key: bytes = field(repr=False)
    """HMAC key of the key names."""

    @classmethod
    def derive(cls, identity: str) -> EntryKeys:
        return cls(_hkdf(identity, b"record-key"), _hkdf(identity, b"key-names"))

    def name(self, what: str) -> str:
        return hmac.new(self.name_key, what.encode(), hashlib.sha256).hexdigest()[:32]


@functools.lru_cache(maxsize=64)
def _hkdf(identity: str, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info).derive(identity.encode())


def seal(keys: EntryKeys, key_name: str, plaintext: str) -> bytes:
    """Encrypt and authenticate a record, bound to the Redis key it is stored under."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(keys.record_key).encrypt(nonce, plaintext.encode(), key_name.encode())
    return _RECORD_FORMAT + nonce + sealed


def unseal(keys: EntryKeys, key_name: str, blob: bytes | None) -> str | None:
    """The record's text, or None if it is missing, damaged, tampered with, or from another key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not blob or blob[:1] != _RECORD_FORMAT or len(blob) < 1 + _NONCE_BYTES + 16:
        return None
    nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        return AESGCM(keys.record_key).decrypt(nonce, sealed, key_name.encode()).decode()
    except (InvalidTag, UnicodeDecodeError):
        return None


# --- Lua: atomic steps, timed by the server's clock (hosts' clocks may disagree) -------------------------

_NOW_MS = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"

# KEYS[1] lock; ARGV token, ttl_ms. Ours: extend. Free (expired, flushed): take it again. Else lost: 0.
_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
# KEYS[1] lock; ARGV token. Delete only if still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS lock, state; ARGV token, lock ttl_ms, record, state ttl_ms. Write only while the lock is ours
# (or free again, e.g. after a flush: then take it back), never over another holder's work.
_FENCED_WRITE = """
local v = redis.call('GET', KEYS[1])
if v ~= ARGV[1] then
  if v then return 0 end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
"""
# KEYS[1] sorted set; ARGV member, ttl_ms. Add or renew a member scored by its expiry; drop the expired.
_JOIN = f"""
{_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# KEYS[1] sorted set: how many members have not expired.
_COUNT = f"""
{_NOW_MS}
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%d', now), '+inf')
"""


class _Scripts:
    """The Lua scripts of one client (redis-py reloads them by itself after a Redis restart)."""

    def __init__(self, client: redis.Redis) -> None:
        self.renew = client.register_script(_RENEW)
        self.release = client.register_script(_RELEASE)
        self.fenced_write = client.register_script(_FENCED_WRITE)
        self.join = client.register_script(_JOIN)
        self.count = client.register_script(_COUNT)


@functools.lru_cache(maxsize=16)
def _scripts(conn: RedisConnection) -> _Scripts:
    return _Scripts(_client(conn))


# --- what a process holds, and the one thread that keeps it alive ---------------------------------------


class _Heartbeat:
    """One daemon thread per process renewing everything the process holds in any Redis store."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # a forked child holds nothing of its parent's, and has no thread yet
        self._mutex = threading.Lock()
        self._held: dict[int, RedisHeld] = {}
        self._thread: threading.Thread | None = None

    def add(self, held: RedisHeld) -> None:
        with self._mutex:
            self._held[id(held)] = held
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="partneros-redis-beat", daemon=True)
                self._thread.start()

    def remove(self, held: RedisHeld) -> None:
        with self._mutex:
            self._held.pop(id(held), None)

    def holding(self) -> int:
        with self._mutex:
            return len(self._held)

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            time.sleep(HEARTBEAT_INTERVAL)
            with self._mutex:
                if self._thread is not me:  # replaced (after a fork): let the new one work
                    return
                held = list(self._held.values())
            for item in held:
                with contextlib.suppress(Exception):  # Redis away: try again next beat
                    item.renew()


_HEARTBEAT = _Heartbeat()


class RedisHeld:
    """A lock, interest, claim or steward guard: renewed by the heartbeat until :meth:`release`."""

    def __init__(self, entry: RedisEntry, key: str, token: str, *, exclusive: bool) -> None:
        self._entry = entry
        self.key = key
        self.token = token
        self.exclusive = exclusive
        self.lost = False
        """An exclusive hold another process took after this one could not renew it in time."""
        self._released = False
        _HEARTBEAT.add(self)

    def renew(self) -> None:
        scripts = self._entry.scripts
        ttl = int(LEASE_TTL * 1000)
        if self.exclusive:
            if not scripts.renew(keys=[self.key], args=[self.token, ttl]):
                self.lost = True
        else:  # a claim comes back even if Redis lost it (restart, flush): the process still uses it
            scripts.join(keys=[self.key], args=[self.token, ttl])

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        _HEARTBEAT.remove(self)
        self._entry.released(self)
        with contextlib.suppress(Exception):  # unreachable: it expires on its own within LEASE_TTL
            if self.exclusive:
                self._entry.scripts.release(keys=[self.key], args=[self.token])
            else:
                self._entry.client.zrem(self.key, self.token)


# --- one identity's keys ----------------------------------------------------------------------------------


class RedisEntry:
    """One identity's keys in the deployment's Redis (see the module docstring). Every method is a
    round trip or two, each bounded by :data:`SOCKET_TIMEOUT`; :meth:`lock` polls until its deadline."""

    scope = "deployment"

    def __init__(self, conn: RedisConnection, keys: EntryKeys) -> None:
        self.conn = conn
        self.keys = keys
        self.client = _client(conn)
        self.scripts = _scripts(conn)
        self.name = keys.name("entry")
        self._lock: RedisHeld | None = None
        self._state_at_lock: tuple[bytes | None] | None = None
        """The state record as it was when this process took the lock (fetched in the same round trip;
        a 1-tuple, as the record may be absent): nobody else writes it while the lock is ours, so the
        first :meth:`read` under the lock needs no round trip of its own."""
        self._failing_since: float | None = None

    def key(self, what: str) -> str:
        return f"{KEY_PREFIX}:{{{self.name}}}:{what}"

    def _claims_key(self, session: StoredSession) -> str:
        return self.key(f"c:{self.keys.name('session:' + session.sid)}")

    @contextlib.contextmanager
    def _io(self, doing: str) -> Iterator[None]:
        import redis

        try:
            yield
        except (redis.RedisError, OSError) as err:
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            raise _problem(self.conn, err, doing) from None
        self._failing_since = None

    def lock(self, deadline: float, cancelled: threading.Event | None = None) -> Held | None:
        key, token = self.key("lock"), secrets.token_hex(16)
        pause = 0.005
        while True:
            with self._io("taking the lock"):
                attempt = self.client.pipeline(transaction=True)
                attempt.set(key, token, nx=True, px=int(LEASE_TTL * 1000))
                attempt.get(self.key("state"))
                taken, state = attempt.execute()
            if taken:
                held = RedisHeld(self, key, token, exclusive=True)
                self._lock = held
                self._state_at_lock = (state,)
                return held
            if time.monotonic() >= deadline or (cancelled is not None and cancelled.is_set()):
                return None
            time.sleep(min(pause * random.uniform(0.5, 1.0), max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, LOCK_POLL)

    def released(self, held: RedisHeld) -> None:
        if self._lock is held:
            self._lock = None
            self._state_at_lock = None

    def read(self) -> StoreState:
        key = self.key("state")
        fetched, self._state_at_lock = self._state_at_lock, None
        blob: bytes | str | None
        if fetched is not None:
            (blob,) = fetched
        else:
            with self._io("reading the session record"):
                blob = self.client.get(key)
        text = unseal(self.keys, key, blob)  # type: ignore[arg-type]
        return StoreState.from_json(text) if text is not None else StoreState()

    def write(self, state: StoreState) -> None:
        """Under this entry's lock: only while the lock is still ours (refused if another process took
        it after ours expired). Without it (not done by the flows): unconditionally."""
        key = self.key("state")
        blob = seal(self.keys, key, state.to_json())
        held = self._lock
        self._state_at_lock = None
        with self._io("writing the session record"):
            if held is None:
                self.client.set(key, blob, px=STATE_TTL * 1000)
                return
            ttl = int(LEASE_TTL * 1000)
            written = self.scripts.fenced_write(
                keys=[held.key, key], args=[held.token, ttl, blob, STATE_TTL * 1000]
            )
        if not written:
            held.lost = True
            raise StoreUnavailable(
                f"the Redis session store at {self.conn.where} did not hear from this process for "
                f"{LEASE_TTL:g} s, so another process took the lock; nothing was written"
            )

    def _join(self, key: str) -> Held:
        token = secrets.token_hex(16)
        with self._io("registering this process as a user"):
            self.scripts.join(keys=[key], args=[token, int(LEASE_TTL * 1000)])
        return RedisHeld(self, key, token, exclusive=False)

    def _count(self, key: str) -> int:
        with self._io("counting the processes using the session"):
            return int(self.scripts.count(keys=[key]))

    def interest(self) -> Held:
        return self._join(self.key("users"))

    def claim(self, session: StoredSession) -> Held:
        return self._join(self._claims_key(session))

    def idle(self) -> bool:
        return self._count(self.key("users")) == 0

    def unused(self, session: StoredSession) -> bool:
        return self._count(self._claims_key(session)) == 0

    def forget(self, session: StoredSession) -> None:
        with self._io("forgetting a session's users"):
            self.client.delete(self._claims_key(session))

    def steward_guard(self) -> Held | None:
        key, token = self.key("steward"), secrets.token_hex(16)
        with self._io("taking the steward's guard"):
            taken = self.client.set(key, token, nx=True, px=int(LEASE_TTL * 1000))
        return RedisHeld(self, key, token, exclusive=True) if taken else None

    def alive(self) -> bool:
        """False once every operation has failed for :data:`GIVE_UP` seconds (a short outage is only
        :class:`StoreUnavailable`). Whatever then lingers unused, the next task that finds it signs
        out, or the server expires."""
        return self._failing_since is None or time.monotonic() - self._failing_since < GIVE_UP

    def ticket(self) -> dict[str, Any]:
        """The Redis connection (its password included) and the entry's derived keys, never the
        PartnerOS password. Sent to the steward through a pipe; never write it to disk or a log."""
        return {
            "kind": "redis",
            "redis": self.conn.to_dict(),
            "record_key": self.keys.record_key.hex(),
            "name_key": self.keys.name_key.hex(),
        }


class RedisStore:
    """The deployment's Redis; :meth:`entry` does no I/O (the first operation meets any problem)."""

    def __init__(self, conn: RedisConnection) -> None:
        _require_redis()
        self.conn = conn

    def entry(self, settings: PartnerOSSettings) -> RedisEntry:
        """The entry for one identity: every value that shapes a session, password included, so another
        user or password never shares (or can read) one."""
        return RedisEntry(self.conn, EntryKeys.derive(settings.identity_json()))


def open_entry(redis_conn: RedisConnection, settings: PartnerOSSettings) -> RedisEntry:
    """The Redis store entry for ``settings``; :class:`PartnerOSConfigError` naming the extra if
    ``redis`` is not installed."""
    return RedisStore(redis_conn).entry(settings)


def reopen(ticket: Mapping[str, Any]) -> RedisEntry:
    """The entry a :meth:`RedisEntry.ticket` describes (in the steward process)."""
    _require_redis()
    try:
        conn = RedisConnection.from_dict(ticket["redis"])
        keys = EntryKeys(bytes.fromhex(ticket["record_key"]), bytes.fromhex(ticket["name_key"]))
    except (KeyError, TypeError, ValueError):
        raise StoreRefused("the Redis session store ticket is incomplete") from None
    return RedisEntry(conn, keys)


__all__ = [
    "GIVE_UP",
    "HEARTBEAT_INTERVAL",
    "LEASE_TTL",
    "SOCKET_TIMEOUT",
    "EntryKeys",
    "RedisConnection",
    "RedisEntry",
    "RedisHeld",
    "RedisStore",
    "open_entry",
    "redis_connection_from_airflow",
    "reopen",
]
