"""A process that holds something in the Redis session store, for tests that SIGKILL it.

``python tests/redis_holder.py`` reads one JSON line from stdin, ``{"ticket": <RedisEntry.ticket()>,
"hold": ..., "sid": ...}``, reopens the entry from the ticket as the steward does, and:

- ``hold`` = ``lock`` | ``interest`` | ``claim`` | ``steward``: takes it, prints ``held``, then sleeps
  until killed (the heartbeat thread keeps renewing it);
- ``hold`` = ``count``: ``rounds`` times, under the lock, reads a plain counter key, waits a little and
  writes it back plus one (lost updates show if two processes ever hold the lock at once); prints
  ``done``.
"""

from __future__ import annotations

import json
import sys
import time

from airflow_provider_partneros._sessions.records import StoredSession
from airflow_provider_partneros._sessions.redis_store import reopen


def main() -> None:
    order = json.loads(sys.stdin.readline())
    entry = reopen(order["ticket"])
    hold = order["hold"]
    if hold == "count":
        client, counter = entry.client, order["counter"]
        for _ in range(int(order["rounds"])):
            lock = entry.lock(time.monotonic() + 60)
            assert lock is not None
            value = int(client.get(counter) or 0)  # type: ignore[arg-type]
            time.sleep(0.002)
            client.set(counter, value + 1)
            lock.release()
        print("done", flush=True)
        return
    session = StoredSession(order.get("sid", "s1"), 0.0, ())
    if hold == "lock":
        held = entry.lock(time.monotonic() + 30)
    elif hold == "interest":
        held = entry.interest()
    elif hold == "claim":
        held = entry.claim(session)
    else:
        held = entry.steward_guard()
    assert held is not None
    print("held", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
