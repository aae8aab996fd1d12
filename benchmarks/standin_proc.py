"""The PartnerOS stand-in in a process of its own, for the benchmarks.

``python benchmarks/standin_proc.py --rate-limit on|off`` starts a demo-seeded
:class:`~airflow_provider_partneros.testing.PartnerOSStandIn` on 127.0.0.1, prints one JSON line
``{"base_url", "control_port", "pid"}`` and then answers JSON-line commands on the control port:
``stats`` (counters and this process's CPU time), ``rate_limit`` (switch the sign-in limit on or off
live; also forgets the limiter's history), ``connection``, ``set_icp_size``, ``add_integration``,
``set_integration``, ``script_integration``, ``add_partners`` (ids), ``analyze_delay`` (seconds), ``stop``.

Running the server here keeps its CPU and memory out of every client figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import socketserver
import sys
import threading
from typing import Any

from airflow_provider_partneros.testing import DEMO_ORG_ID, PartnerOSStandIn

RATE_LIMIT = (3, 10.0)


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return float(ru.ru_utime + ru.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate-limit", choices=("on", "off"), default="on")
    args = parser.parse_args()
    try:
        import resource as _r

        _soft, hard = _r.getrlimit(_r.RLIMIT_NOFILE)
        _r.setrlimit(_r.RLIMIT_NOFILE, (min(hard, 16384), hard))
    except (ValueError, OSError):
        pass

    server = PartnerOSStandIn(sign_in_rate_limit=RATE_LIMIT if args.rate_limit == "on" else None)
    server.seed_demo()
    server.start()
    done = threading.Event()

    def handle(req: dict[str, Any]) -> Any:
        cmd = req.pop("cmd")
        if cmd == "stats":
            return {
                "sign_ins": server.sign_ins,
                "sign_in_attempts": server.sign_in_attempts,
                "sign_outs": server.sign_outs,
                "requests": dict(server.requests),
                "cpu": _cpu(),
                "rate_limit": server.sign_in_rate_limit is not None,
            }
        if cmd == "rate_limit":
            with server._lock:  # the benchmark owns this server: forget the limiter's window too
                server.sign_in_rate_limit = RATE_LIMIT if req["on"] else None
                server._limiter.forget_windows()
            return None
        if cmd == "connection":
            return server.connection_dict()
        if cmd == "set_icp_size":
            server.set_icp_size(req["n"])
            return None
        if cmd == "add_integration":
            server.add_integration(req.pop("connection_id"), organization=DEMO_ORG_ID, **req)
            return None
        if cmd == "set_integration":
            server.set_integration(req.pop("connection_id"), **req)
            return None
        if cmd == "script_integration":
            server.script_integration(req["connection_id"], req["states"])
            return None
        if cmd == "add_partners":
            for pid in req["ids"]:
                server.add_partner(pid, organization=DEMO_ORG_ID, name=pid.title(), domain=f"{pid}.example")
            return None
        if cmd == "analyze_delay":
            server.analyze_delay = float(req["seconds"])
            return None
        if cmd == "stop":
            done.set()
            return None
        raise ValueError(f"unknown command {cmd!r}")

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            try:
                answer = {"result": handle(json.loads(line))}
            except Exception as err:
                answer = {"error": f"{type(err).__name__}: {err}"}
            self.wfile.write((json.dumps(answer) + "\n").encode())

    class Control(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    control = Control(("127.0.0.1", 0), Handler)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    info = {"base_url": server.base_url, "control_port": control.server_address[1]}
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    try:
        done.wait()
    finally:
        control.shutdown()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
