"""IntegrationStatusTrigger: the deferrable half of :class:`IntegrationStatusSensor`.

It polls ``GET /api/integrations/{id}/status`` through this event loop's shared PartnerOS session
(one sign-in for every trigger using the same connection), decides with the same
:func:`airflow_provider_partneros._protocol.integration.evaluate` as poke and reschedule modes, and yields
exactly one event:

``{"status": "success", "document": {...}, "message": ...}``
    the integration reached a target status (and synced late enough);
``{"status": "failure", "error_class": ..., "message": ..., "document": ...}``
    retrying cannot help: a failure status, an unknown connection (404), refused credentials;
``{"status": "error", "error_class": ..., "message": ...}``
    transient trouble lasted more than ``max_transient_errors`` polls in a row (Airflow retries apply);
``{"status": "timeout", "message": ...}``
    the sensor's ``timeout`` passed (also enforced here, because ``dag.test()`` ignores defer timeouts).

Every event also carries ``connection_id`` and ``polls``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_partneros._connection.defaults import DEFAULT_CONN_ID
from airflow_provider_partneros._protocol.integration import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_MAX_TRANSIENT_ERRORS,
    DEFAULT_TARGET_STATUSES,
    evaluate,
    next_poll_delay,
    validate_arguments,
)
from airflow_provider_partneros.exceptions import PartnerOSError

EVENT_STATUSES = frozenset({"success", "failure", "error", "timeout"})


class IntegrationStatusTrigger(BaseTrigger):
    """Wait, asynchronously, until a PartnerOS CRM integration is in a target status.

    :param connection_id: the PartnerOS CRM connection id.
    :param partneros_conn_id: the Airflow connection with the PartnerOS credentials.
    :param target_statuses: statuses that end the wait successfully.
    :param failure_statuses: statuses that fail it at once.
    :param synced_after: ISO 8601 timestamp ``lastSyncAt`` must reach, or None.
    :param poke_interval: seconds between two polls.
    :param max_transient_errors: consecutive polls that may fail transiently (5xx, timeouts, 429) before
        giving up with an ``error`` event.
    :param timeout_at: ISO 8601 deadline; a ``timeout`` event is yielded when it passes.
    """

    def __init__(
        self,
        connection_id: str,
        partneros_conn_id: str = DEFAULT_CONN_ID,
        target_statuses: Sequence[str] = DEFAULT_TARGET_STATUSES,
        failure_statuses: Sequence[str] = DEFAULT_FAILURE_STATUSES,
        synced_after: str | None = None,
        poke_interval: float = 60.0,
        max_transient_errors: int = DEFAULT_MAX_TRANSIENT_ERRORS,
        timeout_at: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        cid, targets, failures, after = validate_arguments(
            connection_id, target_statuses, failure_statuses, synced_after
        )
        self.connection_id = cid
        self.partneros_conn_id = partneros_conn_id
        self.target_statuses = list(targets)
        self.failure_statuses = list(failures)
        self.synced_after = after.in_timezone("UTC").isoformat() if after is not None else None
        self.poke_interval = float(poke_interval)
        self.max_transient_errors = int(max_transient_errors)
        self.timeout_at = timeout_at
        self._synced_after = after
        self._deadline = _parse_deadline(timeout_at)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Plain values only: the triggerer stores these in the metadata DB (never a secret)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "connection_id": self.connection_id,
                "partneros_conn_id": self.partneros_conn_id,
                "target_statuses": list(self.target_statuses),
                "failure_statuses": list(self.failure_statuses),
                "synced_after": self.synced_after,
                "poke_interval": self.poke_interval,
                "max_transient_errors": self.max_transient_errors,
                "timeout_at": self.timeout_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until done; the session is released (and signed out if last) before the event."""
        event = await self._wait()
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def _wait(self) -> dict[str, Any]:
        from airflow_provider_partneros._sessions.async_transport import load_settings, shared_session

        polls = 0
        transient = 0
        try:
            settings = await load_settings(self.partneros_conn_id, self.log)
            async with shared_session(settings, self.log) as session:
                while True:
                    polls += 1
                    last_error: PartnerOSError | None = None
                    try:
                        document = await session.get_integration_status(self.connection_id)
                    except PartnerOSError as err:
                        if not err.retryable:
                            return self._event("failure", err.message, polls, type(err).__name__)
                        transient += 1
                        if transient > self.max_transient_errors:
                            return self._event(
                                "error",
                                f"{err.message} (failed {transient} polls in a row, more than "
                                f"max_transient_errors={self.max_transient_errors}).",
                                polls,
                                type(err).__name__,
                            )
                        last_error = err
                        self.log.warning(
                            "PartnerOS poll %d failed transiently (%d of %d tolerated in a row): %s",
                            polls,
                            transient,
                            self.max_transient_errors,
                            err.message,
                        )
                    else:
                        transient = 0
                        verdict = evaluate(
                            document, self.target_statuses, self.failure_statuses, self._synced_after
                        )
                        if verdict.done:
                            self.log.info("%s Done after %d polls.", verdict.message, polls)
                            return self._event("success", verdict.message, polls, document=document)
                        if verdict.failed:
                            return self._event(
                                "failure",
                                verdict.message,
                                polls,
                                "PartnerOSIntegrationFailedError",
                                document=document,
                            )
                        self.log.info("%s Next poll in %.1f s.", verdict.message, self.poke_interval)
                    delay = next_poll_delay(self.poke_interval, last_error)
                    if self._deadline is not None:
                        remaining = self._deadline - time.time()
                        if remaining <= 0:
                            return self._timeout_event(polls)
                        delay = min(delay, remaining)
                    await asyncio.sleep(delay)
        except PartnerOSError as err:
            kind = "error" if err.retryable else "failure"
            return self._event(kind, err.message, polls, type(err).__name__)
        except Exception as err:  # one event, always: an unexpected error still ends the wait cleanly
            self.log.exception("IntegrationStatusTrigger failed unexpectedly.")
            kind = "failure" if _is_fatal(err) else "error"
            return self._event(kind, f"{type(err).__name__}: {err}", polls, type(err).__name__)

    def _timeout_event(self, polls: int) -> dict[str, Any]:
        return self._event(
            "timeout",
            f"Sensor has timed out: integration {self.connection_id} did not reach "
            f"{' or '.join(self.target_statuses)} by {self.timeout_at} ({polls} polls).",
            polls,
            "AirflowSensorTimeout",
        )

    def _event(
        self,
        status: str,
        message: str,
        polls: int,
        error_class: str | None = None,
        document: Any = None,
    ) -> dict[str, Any]:
        return {
            "status": status,
            "message": message,
            "error_class": error_class,
            "document": document,
            "connection_id": self.connection_id,
            "polls": polls,
        }


def _parse_deadline(timeout_at: str | None) -> float | None:
    if not timeout_at:
        return None
    from airflow_provider_partneros._protocol.integration import parse_synced_after

    when = parse_synced_after(timeout_at)
    return when.timestamp() if when is not None else None


def _is_fatal(err: BaseException) -> bool:
    """Airflow's own "do not retry" signals (e.g. a missing Airflow connection)."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

    return isinstance(err, (AirflowFailException, AirflowNotFoundException))


__all__ = ["EVENT_STATUSES", "IntegrationStatusTrigger"]
