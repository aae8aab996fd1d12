"""The naive baselines: what a provider built on ``HttpHook`` / ``HttpAsyncHook`` would do.

* :class:`NaiveClient`: every call opens a new ``requests.Session`` and signs in first (``HttpHook.run``
  builds a new session per call, and the PartnerOS session cookie has nowhere to live between calls).
* :class:`NaiveIntegrationStatusTrigger`: every poll opens a new ``httpx.AsyncClient`` and signs in.

These live in benchmarks/, never in the package. They need the stand-in's sign-in rate limit switched
off (3 per 10 s would stop them at the fourth call); the benchmarks say so in their output.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

SIGN_IN_PATH = "/api/auth/sign-in/email"


def connection_from_env(conn_id: str = "partneros_default") -> dict[str, Any]:
    """The Airflow connection's fields from its ``AIRFLOW_CONN_`` variable (JSON form)."""
    conn: dict[str, Any] = json.loads(os.environ["AIRFLOW_CONN_" + conn_id.upper()])
    return conn


class NaiveClient:
    """Sign in on every call, as HttpHook-style code does."""

    def __init__(self, conn_id: str = "partneros_default") -> None:
        conn = connection_from_env(conn_id)
        self.base_url = conn["host"].rstrip("/")
        self.credentials = {"email": conn["login"], "password": conn["password"]}

    def call(self, method: str, path: str, json_body: Any = None) -> Any:
        import requests

        with requests.Session() as session:
            reply = session.post(self.base_url + SIGN_IN_PATH, json=self.credentials, timeout=60)
            reply.raise_for_status()
            headers = {"Origin": self.base_url} if method != "GET" else {}
            reply = session.request(method, self.base_url + path, json=json_body, headers=headers, timeout=60)
            reply.raise_for_status()
            return reply.json()


def _base_sensor() -> type:
    from airflow.sdk import BaseSensorOperator

    return BaseSensorOperator


class NaiveIntegrationStatusSensor(_base_sensor()):  # type: ignore[misc]
    """An HttpSensor-style poke: every poke signs in again through :class:`NaiveClient`."""

    def __init__(self, *, connection_id: str, synced_after: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connection_id = connection_id
        self.synced_after = synced_after

    def poke(self, context: Any) -> Any:
        from airflow.sdk import PokeReturnValue

        doc = NaiveClient().call("GET", f"/api/integrations/{self.connection_id}/status")
        done = doc.get("status") == "active" and _synced(doc, self.synced_after)
        return PokeReturnValue(done, xcom_value=doc if done else None)


def _base_trigger() -> type:
    from airflow.triggers.base import BaseTrigger

    return BaseTrigger


class NaiveIntegrationStatusTrigger(_base_trigger()):  # type: ignore[misc]
    """A deferrable-sensor trigger that opens a new HTTP client and signs in on every poll."""

    def __init__(
        self,
        connection_id: str,
        partneros_conn_id: str = "partneros_default",
        poll_interval: float = 5.0,
        target_status: str = "active",
        synced_after: str | None = None,
    ) -> None:
        super().__init__()
        self.connection_id = connection_id
        self.partneros_conn_id = partneros_conn_id
        self.poll_interval = poll_interval
        self.target_status = target_status
        self.synced_after = synced_after

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "naive.NaiveIntegrationStatusTrigger",
            {
                "connection_id": self.connection_id,
                "partneros_conn_id": self.partneros_conn_id,
                "poll_interval": self.poll_interval,
                "target_status": self.target_status,
                "synced_after": self.synced_after,
            },
        )

    async def run(self) -> AsyncIterator[Any]:
        import httpx
        from airflow.triggers.base import TriggerEvent

        conn = connection_from_env(self.partneros_conn_id)
        base_url = conn["host"].rstrip("/")
        credentials = {"email": conn["login"], "password": conn["password"]}
        while True:
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
                reply = await client.post(SIGN_IN_PATH, json=credentials)
                reply.raise_for_status()
                reply = await client.get(f"/api/integrations/{self.connection_id}/status")
                reply.raise_for_status()
                doc = reply.json()
            if doc.get("status") == self.target_status and _synced(doc, self.synced_after):
                yield TriggerEvent({"status": "success", "integration": doc})
                return
            await asyncio.sleep(self.poll_interval)


def _synced(doc: dict[str, Any], synced_after: str | None) -> bool:
    from datetime import datetime

    if synced_after is None:
        return True
    raw = doc.get("lastSyncAt")
    return bool(raw) and datetime.fromisoformat(raw) >= datetime.fromisoformat(synced_after)
