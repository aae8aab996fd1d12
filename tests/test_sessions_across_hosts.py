"""Many hosts behind one egress IP: no task fails on PartnerOS's sign-in limit (3 per 10 s per IP).

Each host is a real process tree with its own session store; every task reaches the stand-in, limiter
on, from 127.0.0.1. A sign-in answered 429 waits out the limiter instead of failing the task, so the
hosts sign in 3 every 10 s until all are in (the figures against the limiter's floor are
``make bench`` row 8: benchmarks/bench_hosts.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hosts import run_hosts, wait_until

from airflow_provider_partneros.testing import PartnerOSStandIn

pytestmark = pytest.mark.hosts


@pytest.mark.parametrize(
    ("hosts", "per_host"),
    [pytest.param(12, 2, id="12-hosts-behind-a-NAT"), pytest.param(24, 1, id="24-kubernetes-pods")],
)
def test_no_task_fails_on_the_sign_in_limit_however_many_hosts_share_one_ip(
    standin: PartnerOSStandIn, tmp_path: Path, hosts: int, per_host: int
) -> None:
    run = run_hosts(
        tmp_path,
        standin.connection_json(extra={"timeout": 10}),
        hosts=hosts,
        per_host=per_host,
        calls=["analyze:partner-1"],
        # A linger, as deployments have: on a busy machine a host's second task may start only after
        # its first has finished, and must still find the host's session.
        linger=5.0,
    )

    assert run.failed == []
    assert standin.sign_ins == hosts  # one per host's store, however many of its tasks
    assert standin.sign_in_rate_limited > 0  # the limiter was met, and waited out
    wait_until(lambda: standin.active_sessions == 0, 60, "every host's steward's sign-out")
    floor = math.ceil(hosts / 3) * 10
    print(
        f"\n{hosts} hosts x {per_host}: {run.wall:.1f} s (limiter floor {floor} s), "
        f"{standin.sign_in_rate_limited} x 429"
    )


def test_tasks_that_opt_out_of_sharing_also_wait_out_the_limit(
    standin: PartnerOSStandIn, tmp_path: Path
) -> None:
    run = run_hosts(
        tmp_path,
        standin.connection_json(extra={"timeout": 10, "session_sharing": False}),
        hosts=1,
        per_host=5,
        calls=["status"],
    )

    assert run.failed == []
    assert standin.sign_ins == 5
    assert standin.sign_in_rate_limited > 0
