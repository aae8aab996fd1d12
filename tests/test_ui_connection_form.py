"""The ``partneros`` connection form and "Test" button in a real Airflow api-server and a real browser.

One api-server (``airflow api-server``, simple auth manager with every user an admin, connection
testing enabled) is started for the module, on the test session's throwaway AIRFLOW_HOME and DB.
Checked, as a user would meet them:

- the connection-type metadata the UI builds the form from (``GET /ui/connections/hook_meta``);
- the UI's "Add Connection" dialog in headless Chromium (Debian's ``chromium``), driven over the
  Chrome DevTools Protocol with the small stdlib WebSocket client below (no new test dependency);
  its screenshot goes to pytest's temporary directory, or with ``PARTNEROS_UPDATE_SCREENSHOT=1``
  to ``docs/images/connection-form.png`` (the one the docs show);
- Airflow's own connection-test path (``POST /api/v2/connections/test``, what the UI's button calls),
  which runs :meth:`PartnerOSHook.test_connection` inside the api-server against a stand-in here.

Chromium missing fails the browser test (CI installs it with ``scripts/system_deps.sh``); developers
without it can set ``PARTNEROS_SKIP_BROWSER=1`` to skip that one test.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_partneros.testing import DEMO_EMAIL, DEMO_PASSWORD, PartnerOSStandIn

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
SCREENSHOT = REPO / "docs" / "images" / "connection-form.png"
STARTUP_TIMEOUT = 150.0
"""Seconds to wait for the api-server's health answer (about 20 s on a busy 2-core machine)."""
SKIP_ENV = "PARTNEROS_SKIP_BROWSER"
UPDATE_ENV = "PARTNEROS_UPDATE_SCREENSHOT"
"""Set to 1 to (re)write the committed ``docs/images/connection-form.png``; otherwise the screenshot goes to
pytest's temporary directory, so a test run never dirties the work tree."""

EXTRA_LABELS = {
    "organization_id": "Organization ID",
    "timeout": "Timeout (seconds)",
    "verify": "Verify TLS",
    "max_retries": "Max retries",
    "retry_backoff": "Retry backoff (seconds)",
    "session_sharing": "Share the session per host",
    "session_max_age": "Shared session max age (seconds)",
}


# --- the api-server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it spawned."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # uvicorn's worker may outlive its parent briefly: make sure the group is gone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def api_server(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``airflow api-server`` on a free loopback port; yields its base URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("api-server") / "api-server.log"
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__WORKERS": "1",
        }
    )
    # The stand-in lives on loopback in this process; a proxy from the environment must not intercept.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow",
                "api-server",
                "--apps",
                "core",
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"airflow api-server exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                if requests.get(f"{base_url}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"airflow api-server did not answer in {STARTUP_TIMEOUT:.0f} s:\n{_tail(log_path)}"
                )
            time.sleep(0.25)
        yield base_url
    finally:
        _stop_group(proc, grace=5)


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- the connection-type metadata --------------------------------------------------------------------


def test_hook_meta_lists_partneros_form(api_server: str) -> None:
    reply = requests.get(f"{api_server}/ui/connections/hook_meta", timeout=30)
    assert reply.status_code == 200, reply.text
    metas = [m for m in reply.json() if m["connection_type"] == "partneros"]
    assert len(metas) == 1, "the api-server does not list the partneros connection type"
    meta = metas[0]
    assert meta["hook_name"] == "PartnerOS"
    assert meta["hook_class_name"] == "airflow_provider_partneros.hooks.partneros.PartnerOSHook"

    std = meta["standard_fields"]
    assert std["host"] == {"hidden": False, "title": "Base URL", "placeholder": "https://app.partneros.com"}
    assert std["login"] == {"hidden": False, "title": "Email", "placeholder": "you@example.com"}
    assert std["password"] == {"hidden": False, "title": None, "placeholder": "PartnerOS password"}
    assert std["url_schema"]["hidden"] is True
    assert std["port"]["hidden"] is True

    extras = meta["extra_fields"]
    assert set(extras) == set(EXTRA_LABELS)
    for name, label in EXTRA_LABELS.items():
        assert extras[name]["schema"]["title"] == label, name
        assert extras[name]["description"], f"extra {name} has no help text"
    assert {name: extras[name]["value"] for name in EXTRA_LABELS} == {
        "organization_id": None,
        "timeout": 30.0,
        "verify": "true",
        "max_retries": 2,
        "retry_backoff": 1.0,
        "session_sharing": True,
        "session_max_age": 900.0,
    }
    assert extras["session_sharing"]["schema"]["type"] == ["boolean", "null"]
    assert extras["timeout"]["schema"]["type"] == ["number", "null"]
    assert extras["max_retries"]["schema"]["type"] == ["integer", "null"]
    assert extras["max_retries"]["schema"]["minimum"] == 0
    assert "REQUESTS_CA_BUNDLE" in extras["verify"]["description"]


# --- Airflow's connection-test path --------------------------------------------------------------------


@pytest.fixture
def standin() -> Iterator[PartnerOSStandIn]:
    """A demo stand-in on loopback with no sign-in rate limit (the api-server signs in from 127.0.0.1)."""
    server = PartnerOSStandIn(sign_in_rate_limit=None)
    server.seed_demo()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _test_connection(api_server: str, standin: PartnerOSStandIn, password: str) -> dict[str, Any]:
    body = {
        "connection_id": "partneros_ui_test",
        "conn_type": "partneros",
        "host": standin.base_url,
        "login": DEMO_EMAIL,
        "password": password,
        "extra": json.dumps({"timeout": 10}),
    }
    reply = requests.post(f"{api_server}/api/v2/connections/test", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def test_airflow_test_connection_good_credentials(api_server: str, standin: PartnerOSStandIn) -> None:
    result = _test_connection(api_server, standin, DEMO_PASSWORD)
    assert result == {
        "status": True,
        "message": f"Connected to {standin.base_url}: signed in, active organization org-demo.",
    }
    assert standin.sign_ins == 1
    assert standin.sign_outs == 1, "test_connection must sign out again"


def test_airflow_test_connection_wrong_password(api_server: str, standin: PartnerOSStandIn) -> None:
    wrong = "Wr0ng-p@ss:word/%+#?"
    result = _test_connection(api_server, standin, wrong)
    assert result["status"] is False
    assert "Sign-in refused" in result["message"]
    assert "email and password" in result["message"]
    for secret in (wrong, DEMO_PASSWORD, "Wr0ng"):
        assert secret not in result["message"]
    assert standin.sign_ins == 0


# --- the UI in headless Chromium -------------------------------------------------------------------------


class CDP:
    """A minimal Chrome DevTools Protocol client over a stdlib WebSocket (RFC 6455, client-masked frames)."""

    def __init__(self, ws_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(ws_url)
        self._sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the WebSocket during the handshake")
            head += chunk
        head, self._buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {head[:200]!r}")
        self._next_id = 0

    def _recv_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self._sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise ConnectionError("DevTools closed the WebSocket")
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _recv_message(self) -> str:
        message = b""
        while True:
            b0, b1 = self._recv_exact(2)
            fin, opcode, length = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", self._recv_exact(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", self._recv_exact(8))
            payload = self._recv_exact(length)
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode in (0x0, 0x1, 0x2):
                message += payload
                if fin:
                    return message.decode()

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack(">BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a CDP method and return its result; events arriving meanwhile are dropped."""
        self._next_id += 1
        msg_id = self._next_id
        self._send_frame(0x1, json.dumps({"id": msg_id, "method": method, "params": params}).encode())
        while True:
            reply = json.loads(self._recv_message())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"CDP {method} failed: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(f"JavaScript failed: {details.get('exception', details)}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.1)

    def click(self, expression: str) -> None:
        """Click what ``expression`` evaluates to with real mouse events (Ark UI ignores ``el.click()``)."""
        x, y = self.evaluate(
            f"(() => {{ const el = {expression}; el.scrollIntoView({{block: 'center'}});"
            " const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type_text(self, expression: str, text: str) -> None:
        self.evaluate(f"{expression}.focus()")
        self.send("Input.insertText", text=text)

    def press_enter(self) -> None:
        common = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
        self.send("Input.dispatchKeyEvent", type="keyDown", text="\r", **common)
        self.send("Input.dispatchKeyEvent", type="keyUp", **common)

    def screenshot(self, clip_expression: str | None = None) -> str:
        """Base64 PNG of the viewport, or of the element ``clip_expression`` evaluates to."""
        params: dict[str, Any] = {"format": "png"}
        if clip_expression is not None:
            x, y, w, h = self.evaluate(
                f"(() => {{ const r = {clip_expression}.getBoundingClientRect();"
                " return [r.x, r.y, r.width, r.height]; })()"
            )
            params["clip"] = {"x": x, "y": y, "width": w, "height": h, "scale": 1}
        return str(self.send("Page.captureScreenshot", **params)["data"])

    def close(self) -> None:
        self._sock.close()


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,1800",
    "--remote-debugging-port=0",
)


@pytest.fixture
def browser() -> Iterator[CDP]:
    """Headless Debian Chromium; yields a DevTools client attached to its page."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: browser test skipped on request")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail(
            "Chromium is not installed, so the Airflow UI cannot be checked. Install Debian's package "
            f"(`apt-get install chromium`; scripts/system_deps.sh does it in CI), or set {SKIP_ENV}=1 "
            "to skip this test locally."
        )
    profile = tempfile.mkdtemp(prefix="partneros-chromium-")
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client: CDP | None = None
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start its DevTools endpoint (exit code {proc.poll()})")
            time.sleep(0.05)
        devtools_port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=10) as answer:
            targets = json.load(answer)
        page = next(t for t in targets if t["type"] == "page")
        client = CDP(page["webSocketDebuggerUrl"])
        client.send("Page.enable")
        client.send("Runtime.enable")
        yield client
    finally:
        if client is not None:
            client.close()
        _stop_group(proc, grace=5)
        shutil.rmtree(profile, ignore_errors=True)


DIALOG = "document.querySelector('[role=dialog]')"
SETTLED = (
    "document.getAnimations()"
    ".every(a => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity)"
)
"""No finite animation (the dialog's fade-in, an accordion opening) is still running; spinners may."""


def _button(text: str) -> str:
    return f"[...{DIALOG}.querySelectorAll('button')].find(b => b.textContent.trim() === {json.dumps(text)})"


def _labels(browser: CDP) -> list[str]:
    labels: list[str] = browser.evaluate(
        f"[...{DIALOG}.querySelectorAll('label')].map(l => l.textContent.replace('*', '').trim())"
    )
    return labels


def _side_by_side(browser: CDP, left: str, right: str) -> bytes:
    """Join two base64 PNGs side by side with a canvas in a blank page (no image library needed)."""
    browser.send("Page.navigate", url="about:blank")
    browser.wait_for("document.readyState === 'complete' && location.href === 'about:blank'", "a blank page")
    data = browser.evaluate(
        """(async (a, b) => {
            const load = (src) => new Promise((ok, fail) => {
                const img = new Image(); img.onload = () => ok(img); img.onerror = fail;
                img.src = 'data:image/png;base64,' + src;
            });
            const [l, r] = await Promise.all([load(a), load(b)]);
            const gap = 24, canvas = document.createElement('canvas');
            canvas.width = l.width + gap + r.width; canvas.height = Math.max(l.height, r.height);
            const g = canvas.getContext('2d');
            g.fillStyle = '#e2e8f0'; g.fillRect(0, 0, canvas.width, canvas.height);
            g.drawImage(l, 0, 0); g.drawImage(r, l.width + gap, 0);
            return canvas.toDataURL('image/png').split(',')[1];
        })"""
        + f"({json.dumps(left)}, {json.dumps(right)})"
    )
    return base64.b64decode(data)


def test_add_connection_form_in_browser(browser: CDP, api_server: str, tmp_path: Path) -> None:
    browser.send("Page.navigate", url=f"{api_server}/connections")
    add_button = (
        "[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Add Connection')"
    )
    browser.wait_for(f"!!({add_button})", "the Connections page's Add Connection button", timeout=60)
    browser.click(add_button)
    browser.wait_for(f"!!{DIALOG}?.querySelector('input[name=connection_id]')", "the Add Connection dialog")

    browser.type_text(f"{DIALOG}.querySelector('input[name=connection_id]')", "partneros_default")
    browser.type_text(f"{DIALOG}.querySelector('input[role=combobox]')", "PartnerOS")
    browser.wait_for(
        "[...document.querySelectorAll('[role=option]')].some(o => o.textContent.trim() === 'PartnerOS')",
        "PartnerOS in the connection type list",
    )
    browser.press_enter()
    browser.wait_for(f"{DIALOG}.innerText.includes('Base URL') && {SETTLED}", "the PartnerOS standard fields")

    labels = _labels(browser)
    for expected in ("Connection ID", "Connection Type", "Description", "Base URL", "Email", "Password"):
        assert expected in labels, f"{expected!r} not among the form's labels {labels}"
    for hidden in ("Host", "Login", "Schema", "Port"):
        assert hidden not in labels, f"{hidden!r} should be relabelled or hidden, labels: {labels}"
    placeholders = browser.evaluate(
        f"Object.fromEntries([...{DIALOG}.querySelectorAll('input[placeholder]')]"
        ".map(i => [i.placeholder, i.type]))"
    )
    assert placeholders.get("https://app.partneros.com") == "text"
    assert placeholders.get("you@example.com") == "text"
    assert placeholders.get("PartnerOS password") == "password", "the password field must be masked"
    standard_png = browser.screenshot(DIALOG)

    browser.click(_button("Extra Fields"))
    # The accordion keeps one section open: wait until the standard fields have folded away too (on a
    # loaded machine the fold starts a frame after the extras appear, when no animation runs yet).
    base_url = f"{DIALOG}.querySelector('input[placeholder=\"https://app.partneros.com\"]')"
    browser.wait_for(
        f"{DIALOG}.innerText.includes('Retry backoff (seconds)')"
        f" && ({base_url}?.offsetParent ?? null) === null && {SETTLED}",
        "the PartnerOS extra fields (and the standard fields folded away)",
    )
    labels = _labels(browser)
    for label in EXTRA_LABELS.values():
        assert label in labels, f"extra {label!r} not among the form's labels {labels}"
    values = browser.evaluate(
        f"[...{DIALOG}.querySelectorAll('input')].filter(i => i.offsetParent !== null && i.name !== "
        "'connection_id' && i.getAttribute('role') !== 'combobox').map(i => i.value)"
    )
    # The last two are the session extras: a switch ("on" is an HTML checkbox's value) and 900 s.
    assert values == ["", "30", "true", "2", "1", "on", "900"], f"defaults shown for the extras: {values}"
    switches = browser.evaluate(
        f"[...{DIALOG}.querySelectorAll('input[type=checkbox]')].filter(i => i.offsetParent !== null"
        " || i.closest('label')).map(i => i.checked)"
    )
    assert switches == [True], f"session_sharing should show as on: {switches}"
    text = browser.evaluate(f"{DIALOG}.innerText")
    assert "Wins over REQUESTS_CA_BUNDLE" in text
    extras_png = browser.screenshot(DIALOG)

    png = _side_by_side(browser, standard_png, extras_png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    target = SCREENSHOT if os.environ.get(UPDATE_ENV) == "1" else tmp_path / SCREENSHOT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png)
    print(f"screenshot: {target}")
