"""``python -m airflow_provider_partneros.testing``: run a demo PartnerOS stand-in until stopped.

Prints the base URL, the demo credentials and an ``AIRFLOW_CONN_PARTNEROS_DEFAULT=...`` line so a
local Airflow (``airflow standalone``, ``dag.test()``) can talk to it straight away.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from types import FrameType

from airflow_provider_partneros.testing import (
    DEFAULT_CONN_ID,
    DEMO_APPLICATION_SLUG,
    DEMO_BROKEN_CONNECTION,
    DEMO_EMAIL,
    DEMO_HUBSPOT_CONNECTION,
    DEMO_PARTNER_IDS,
    DEMO_PASSWORD,
    DEMO_SALESFORCE_CONNECTION,
    NOORG_EMAIL,
    PARTNER_EMAIL,
    UNVERIFIED_EMAIL,
    PartnerOSStandIn,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m airflow_provider_partneros.testing",
        description="Run a PartnerOS stand-in server seeded with demo data.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port to bind, 0 for any free one (default: 8765)")
    p.add_argument(
        "--no-rate-limit",
        action="store_true",
        help="disable the sign-in rate limit (3 attempts per 10 s per client IP)",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve https with a throw-away CA; prints the CA bundle path to verify against",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run until Ctrl-C or SIGTERM; returns the exit code."""
    args = _parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="partneros-standin-tls-") as tls_dir:
        return _run(args, tls_dir)


def _run(args: argparse.Namespace, tls_dir: str) -> int:
    tls_ctx, ca_path = None, None
    if args.tls:
        from airflow_provider_partneros.testing.tls import make_self_signed

        files = make_self_signed(tls_dir)
        tls_ctx, ca_path = files.server_context(), files.ca_path
    server = PartnerOSStandIn(
        args.host, args.port, tls=tls_ctx, sign_in_rate_limit=None if args.no_rate_limit else (3, 10.0)
    )
    server.seed_demo()
    try:
        server.start()
    except OSError as exc:
        print(f"Cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    # A plain flag, not a threading.Event: Event.set() takes a lock that the main thread may hold at
    # the instant the handler runs (inside Event.wait), which deadlocks the exit (seen once, rarely).
    stop_requested = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    extra = {"verify": ca_path} if ca_path else None
    lines = [
        f"PartnerOS stand-in listening on {server.base_url}",
        f"  demo user:        {DEMO_EMAIL} / {DEMO_PASSWORD}",
        f"  other users:      {PARTNER_EMAIL} (partner role), {NOORG_EMAIL} (no active org), "
        f"{UNVERIFIED_EMAIL} (unverified); same password",
        f"  integrations:     {DEMO_SALESFORCE_CONNECTION}, {DEMO_HUBSPOT_CONNECTION}, "
        f"{DEMO_BROKEN_CONNECTION}",
        f"  partners:         {', '.join(DEMO_PARTNER_IDS)}",
        f"  application form: {DEMO_APPLICATION_SLUG}",
        "  sign-in rate limit: " + ("off" if args.no_rate_limit else "3 per 10 s per client IP"),
    ]
    if ca_path:
        lines.append(f"  CA bundle:        {ca_path}")
    lines += [
        f"AIRFLOW_CONN_{DEFAULT_CONN_ID.upper()}={shlex.quote(server.connection_json(extra=extra))}",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
    try:
        while not stop_requested:
            time.sleep(0.2)
    finally:
        server.stop()
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
