"""The deployment's session store on a real ``redis-server``: what it guarantees, and how Redis fails.

Behaviours about processes (a lock across processes, a SIGKILLed holder) use real processes
(``tests/redis_holder.py``, which reopens the entry from its ticket as the steward does).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hosts import wait_until
from redis_helpers import RedisServer

from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros._sessions.records import CookieRecord, StoredSession, StoreState
from airflow_provider_partneros._sessions.redis_store import (
    HEARTBEAT_INTERVAL,
    LEASE_TTL,
    SOCKET_TIMEOUT,
    EntryKeys,
    RedisEntry,
    open_entry,
    redis_connection_from_airflow,
    reopen,
    seal,
    unseal,
)
from airflow_provider_partneros._sessions.store import StoreUnavailable
from airflow_provider_partneros.exceptions import PartnerOSConfigError

pytestmark = pytest.mark.redis

HOLDER = Path(__file__).with_name("redis_holder.py")
EMAIL = "ops.robot@acme-partners.example"
ORG_ID = "7f0c9b6e-4d1a-4c55-9b8e-2f1d3c4b5a69"
HOST = "partneros.acme-internal.example"
PASSWORD = "S3cret-PartnerOS-pw!"
COOKIE_VALUE = "kq7Zp0c00kie.v4lue%2Bsigned"


def settings(password: str = PASSWORD) -> PartnerOSSettings:
    return PartnerOSSettings(
        conn_id="partneros_default",
        base_url=f"https://{HOST}",
        email=EMAIL,
        password=password,
        organization_id=ORG_ID,
    )


def a_state(sid: str = "a1b2c3d4e5f60718") -> StoreState:
    cookie = CookieRecord("__Secure-better-auth.session_token", COOKIE_VALUE, HOST, "/", secure=True)
    return StoreState(current=StoredSession(sid, time.time(), (cookie,)))


@pytest.fixture
def entry(redis_server: RedisServer) -> RedisEntry:
    return open_entry(redis_server.connection(), settings())


class Holder:
    """A real process holding ``hold`` in ``entry`` (see tests/redis_holder.py)."""

    def __init__(self, entry: RedisEntry, hold: str, **order: Any) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HOLDER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"ticket": entry.ticket(), "hold": hold, **order}) + "\n")
        self.proc.stdin.close()

    def wait_for(self, word: str, timeout: float = 60) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line == word, f"holder said {line!r} (exit code {self.proc.poll()})"

    def kill(self) -> float:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        return time.monotonic()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.proc.poll() is None:
            holder.kill()


def hold(holders: list[Holder], entry: RedisEntry, what: str, **order: Any) -> Holder:
    holder = Holder(entry, what, **order)
    holders.append(holder)
    holder.wait_for("held")
    return holder


# --- the lock ------------------------------------------------------------------------------------------


def test_the_lock_is_exclusive_across_processes(entry: RedisEntry, redis_server: RedisServer) -> None:
    counter = "test:counter"
    procs = []
    for _ in range(4):
        holder = Holder(entry, "count", counter=counter, rounds=25)
        procs.append(holder)
    for holder in procs:
        holder.wait_for("done", timeout=120)
        assert holder.proc.wait(timeout=30) == 0
    assert int(redis_server.client().get(counter) or 0) == 100  # no update lost: never two holders


def test_a_live_lock_holder_keeps_the_lock_past_its_expiry(entry: RedisEntry, holders: list[Holder]) -> None:
    hold(holders, entry, "lock")
    time.sleep(LEASE_TTL + HEARTBEAT_INTERVAL)
    assert entry.lock(time.monotonic() + 0.5) is None


def test_a_killed_lock_holder_blocks_the_lock_for_at_most_its_expiry(
    entry: RedisEntry, holders: list[Holder]
) -> None:
    holder = hold(holders, entry, "lock")
    killed = holder.kill()
    lock = entry.lock(killed + LEASE_TTL + 3)
    waited = time.monotonic() - killed
    assert lock is not None
    assert LEASE_TTL - HEARTBEAT_INTERVAL - 1 <= waited <= LEASE_TTL + 0.5  # it expired; nobody freed it
    lock.release()


def test_a_released_lock_is_free_at_once(entry: RedisEntry) -> None:
    first = entry.lock(time.monotonic() + 1)
    assert first is not None
    assert entry.lock(time.monotonic() + 0.2) is None
    first.release()
    first.release()  # idempotent
    second = entry.lock(time.monotonic() + 0.2)
    assert second is not None
    second.release()


def test_the_steward_guard_is_held_by_one_process(entry: RedisEntry, holders: list[Holder]) -> None:
    hold(holders, entry, "steward")
    assert entry.steward_guard() is None
    holders[0].kill()
    guard = None
    deadline = time.monotonic() + LEASE_TTL + 2
    while guard is None and time.monotonic() < deadline:
        guard = entry.steward_guard()
        time.sleep(0.1)
    assert guard is not None
    guard.release()


def test_a_write_after_another_process_took_the_expired_lock_is_refused(
    entry: RedisEntry, redis_server: RedisServer
) -> None:
    entry.write(a_state("0000000000000001"))
    lock = entry.lock(time.monotonic() + 1)
    assert lock is not None
    redis_server.client().set(entry.key("lock"), "another-process")  # ours expired; theirs now
    with pytest.raises(StoreUnavailable, match="another process took the lock"):
        entry.write(a_state("0000000000000002"))
    lock.release()
    assert entry.read().current is not None
    assert entry.read().current.sid == "0000000000000001"


# --- interest and claims -------------------------------------------------------------------------------


def test_a_live_user_keeps_counting_past_the_expiry(entry: RedisEntry, holders: list[Holder]) -> None:
    session = StoredSession("5e55100000000001", 0.0, ())
    hold(holders, entry, "claim", sid=session.sid)
    hold(holders, entry, "interest")
    time.sleep(LEASE_TTL + HEARTBEAT_INTERVAL)
    assert not entry.unused(session)
    assert not entry.idle()


def test_a_killed_user_stops_counting_within_the_expiry(entry: RedisEntry, holders: list[Holder]) -> None:
    session = StoredSession("5e55100000000002", 0.0, ())
    claim = hold(holders, entry, "claim", sid=session.sid)
    interest = hold(holders, entry, "interest")
    assert not entry.unused(session)
    assert not entry.idle()
    killed = min(claim.kill(), interest.kill())
    wait_until(
        lambda: entry.unused(session) and entry.idle(), LEASE_TTL + 3, "the dead holder's claims to lapse"
    )
    assert time.monotonic() - killed <= LEASE_TTL + 0.5


def test_a_released_claim_stops_counting_at_once(entry: RedisEntry) -> None:
    session = StoredSession("5e55100000000003", 0.0, ())
    claim, interest = entry.claim(session), entry.interest()
    other = StoredSession("5e55100000000004", 0.0, ())
    assert not entry.unused(session)
    assert entry.unused(other)
    assert not entry.idle()
    claim.release()
    interest.release()
    assert entry.unused(session)
    assert entry.idle()


# --- the record at rest ----------------------------------------------------------------------------------


def test_a_written_record_reads_back(entry: RedisEntry) -> None:
    entry.write(a_state())
    current = entry.read().current
    assert current is not None
    assert current.cookies[0].value == COOKIE_VALUE


def test_a_record_with_a_flipped_byte_reads_as_empty(entry: RedisEntry, redis_server: RedisServer) -> None:
    entry.write(a_state())
    client = redis_server.client()
    blob = bytearray(client.get(entry.key("state")))  # type: ignore[arg-type]
    blob[len(blob) // 2] ^= 0x01
    client.set(entry.key("state"), bytes(blob))
    assert entry.read() == StoreState()


def test_a_record_copied_to_another_identity_reads_as_empty(
    entry: RedisEntry, redis_server: RedisServer
) -> None:
    other = open_entry(redis_server.connection(), settings(password="another-password"))
    assert other.key("state") != entry.key("state")
    entry.write(a_state())
    client = redis_server.client()
    client.set(other.key("state"), client.get(entry.key("state")))  # type: ignore[arg-type]
    assert other.read() == StoreState()


def test_a_record_sealed_for_one_key_does_not_open_under_another() -> None:
    keys = EntryKeys.derive(settings().identity_json())
    blob = seal(keys, "partneros:{a}:state", "{}")
    assert unseal(keys, "partneros:{a}:state", blob) == "{}"
    assert unseal(keys, "partneros:{b}:state", blob) is None


def test_nothing_in_redis_names_the_user_org_url_password_or_cookie(
    entry: RedisEntry, redis_server: RedisServer
) -> None:
    state = a_state()
    state.failure = {"message": f"sign-in refused for {EMAIL}", "at": time.time()}
    entry.write(state)
    assert state.current is not None
    held = [
        entry.lock(time.monotonic() + 1),
        entry.interest(),
        entry.claim(state.current),
        entry.steward_guard(),
    ]
    dump = redis_server.dump()
    assert len(dump) >= 5  # state, lock, users, claims, steward
    secrets = [EMAIL, ORG_ID, HOST, PASSWORD, COOKIE_VALUE, "partneros.acme", "acme-partners"]
    for key, value in dump.items():
        for secret in secrets:
            assert secret.encode() not in key, (key, secret)
            assert secret.encode() not in value, (key, secret)
    for item in held:
        assert item is not None
        item.release()


def test_another_password_gets_other_keys(redis_server: RedisServer) -> None:
    one = open_entry(redis_server.connection(), settings())
    two = open_entry(redis_server.connection(), settings(password="rotated-password"))
    assert one.key("state") != two.key("state")
    one.write(a_state())
    assert two.read() == StoreState()


# --- the ticket ------------------------------------------------------------------------------------------


def test_the_ticket_carries_no_partneros_password(entry: RedisEntry) -> None:
    text = json.dumps(entry.ticket())
    assert PASSWORD not in text
    assert EMAIL not in text
    assert HOST not in text


def test_an_entry_reopened_from_its_ticket_shares_the_record_and_lock(entry: RedisEntry) -> None:
    entry.write(a_state("7777777777777777"))
    again = reopen(json.loads(json.dumps(entry.ticket())))
    current = again.read().current
    assert current is not None
    assert current.sid == "7777777777777777"
    lock = again.lock(time.monotonic() + 1)
    assert lock is not None
    assert entry.lock(time.monotonic() + 0.2) is None
    lock.release()


# --- Redis trouble: StoreUnavailable at once, naming the problem, never a password ----------------------


def every_operation(entry: RedisEntry) -> list[Any]:
    session = StoredSession("5e55100000000009", 0.0, ())
    return [
        lambda: entry.lock(time.monotonic() + 30),
        entry.read,
        lambda: entry.write(a_state()),
        entry.interest,
        lambda: entry.claim(session),
        entry.idle,
        lambda: entry.unused(session),
        lambda: entry.forget(session),
        entry.steward_guard,
    ]


def assert_unavailable(entry: RedisEntry, words: str, within: float) -> None:
    for operation in every_operation(entry):
        start = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            operation()
        took = time.monotonic() - start
        message = str(caught.value)
        assert words in message, message
        assert f"127.0.0.1:{entry.conn.port}" in message, message
        assert took < within, (message, took)
        for secret in (entry.conn.password, PASSWORD, "redis-test-pw"):
            assert secret is not None
            assert secret not in message


def test_redis_down_is_store_unavailable_at_once(entry: RedisEntry, redis_server: RedisServer) -> None:
    redis_server.kill()
    assert_unavailable(entry, "is unreachable", within=1.0)


def test_a_wrong_redis_password_is_store_unavailable_naming_authentication(redis_server: RedisServer) -> None:
    entry = open_entry(redis_server.connection(password="not-the-redis-pw"), settings())
    assert_unavailable(entry, "authentication failed", within=1.0)
    assert "not-the-redis-pw" not in json.dumps(str(entry.conn))


def test_a_slow_redis_is_store_unavailable_within_the_socket_timeout(
    entry: RedisEntry, redis_server: RedisServer
) -> None:
    entry.read()  # connected before the server stops answering
    sleeper = redis_server.sleep(SOCKET_TIMEOUT * 2 + 1)
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match="timed out") as caught:
        entry.read()
    assert time.monotonic() - start < SOCKET_TIMEOUT * 2 + 0.5
    assert redis_server.password not in str(caught.value)
    sleeper.wait(timeout=30)


def test_a_redis_restart_loses_the_record_and_the_store_works_again(
    entry: RedisEntry, redis_server: RedisServer
) -> None:
    entry.write(a_state())
    redis_server.kill()
    with pytest.raises(StoreUnavailable):
        entry.read()
    redis_server.start()
    assert entry.read() == StoreState()  # no persistence: a sign-in, never a failure
    entry.write(a_state())
    assert entry.read().current is not None


def test_after_flushall_the_record_is_empty_and_live_users_count_again(
    entry: RedisEntry, redis_server: RedisServer
) -> None:
    entry.write(a_state())
    session = StoredSession("5e5510000000000a", 0.0, ())
    claim = entry.claim(session)
    redis_server.flushall()
    assert entry.read() == StoreState()
    wait_until(lambda: not entry.unused(session), HEARTBEAT_INTERVAL * 2 + 1, "the heartbeat's new claim")
    claim.release()


def test_a_lock_held_across_flushall_still_writes(entry: RedisEntry, redis_server: RedisServer) -> None:
    lock = entry.lock(time.monotonic() + 1)
    assert lock is not None
    redis_server.flushall()
    entry.write(a_state("8888888888888888"))  # the lock was free again: taken back, not refused
    assert entry.lock(time.monotonic() + 0.2) is None
    lock.release()
    current = entry.read().current
    assert current is not None
    assert current.sid == "8888888888888888"


# --- configuration -------------------------------------------------------------------------------------


def test_an_airflow_redis_connection_gives_server_password_db_and_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.sdk import BaseHook

    extra = {"db": 3, "ssl": True, "ssl_cert_reqs": "required", "ssl_ca_certs": "/etc/ssl/redis-ca.pem"}
    doc = {"conn_type": "redis", "host": "redis.internal", "port": 6380, "login": "airflow",
           "password": "r3dis-pw", "extra": extra}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_PARTNEROS_REDIS", json.dumps(doc))
    conn = BaseHook.get_connection("partneros_redis")
    redis_conn = redis_connection_from_airflow(conn, conn.extra_dejson)
    assert (redis_conn.host, redis_conn.port, redis_conn.username, redis_conn.db) == (
        "redis.internal",
        6380,
        "airflow",
        3,
    )
    assert redis_conn.password == "r3dis-pw"
    assert (redis_conn.ssl, redis_conn.ssl_cert_reqs, redis_conn.ssl_ca_certs) == (
        True,
        "required",
        "/etc/ssl/redis-ca.pem",
    )
    assert "r3dis-pw" not in repr(redis_conn)
    assert redis_conn.where == "rediss://redis.internal:6380/3"


def test_a_redis_connection_without_a_host_is_a_config_error() -> None:
    class Conn:
        conn_id, host, port, login, password = "partneros_redis", "", None, None, None

    with pytest.raises(PartnerOSConfigError, match="has no host"):
        redis_connection_from_airflow(Conn(), {})


def test_without_the_redis_package_the_store_names_the_extra(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis -> ImportError
    with pytest.raises(PartnerOSConfigError, match=r"pip install 'airflow-provider-partneros\[redis\]'"):
        open_entry(redis_server.connection(), settings())


def test_the_entry_is_alive_until_redis_has_failed_for_the_give_up_time(
    entry: RedisEntry, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_partneros._sessions import redis_store

    entry.read()
    redis_server.kill()
    with pytest.raises(StoreUnavailable):
        entry.read()
    assert entry.alive()  # a short outage: the steward keeps looking after the entry
    monkeypatch.setattr(redis_store, "GIVE_UP", 0.0)
    assert not entry.alive()  # Redis gone for good: the steward exits
    redis_server.start()
    entry.read()
    assert entry.alive()
