"""IntegrationStatusSensor: wait until a PartnerOS CRM integration is healthy (and synced recently).

Import-light on purpose (DAG files import it): the hook (``requests``) and the trigger (``httpx``) are
imported only when the task runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_partneros import exceptions as _exc
from airflow_provider_partneros._connection.defaults import DEFAULT_CONN_ID
from airflow_provider_partneros._protocol.arguments import is_template
from airflow_provider_partneros._protocol.integration import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_MAX_TRANSIENT_ERRORS,
    DEFAULT_TARGET_STATUSES,
    check_status_lists,
    evaluate,
    next_poll_delay,
    normalize_statuses,
    parse_synced_after,
    require_connection_id,
    validate_arguments,
)
from airflow_provider_partneros.exceptions import (
    PartnerOSError,
    PartnerOSFatalError,
    PartnerOSIntegrationFailedError,
)
from airflow_provider_partneros.version_compat import conf

if TYPE_CHECKING:
    import pendulum
    from airflow.sdk import Context

    from airflow_provider_partneros.hooks.partneros import PartnerOSHook


class IntegrationStatusSensor(BaseSensorOperator):
    """Wait until the PartnerOS CRM connection ``connection_id`` is in one of ``target_statuses``.

    Fails at once, without retries, when the status is one of ``failure_statuses`` (with the
    integration's ``lastErrorMessage`` and what to do) or when PartnerOS does not know the connection
    (404). The status document is the task's XCom value.

    :param connection_id: the PartnerOS CRM connection id (templated).
    :param partneros_conn_id: the Airflow connection holding the PartnerOS credentials.
    :param target_statuses: statuses that count as ready (default ``("active",)``).
    :param failure_statuses: statuses that fail the task at once.
    :param synced_after: also require ``lastSyncAt`` at or after this moment (templated): a datetime,
        an ISO 8601 string, or e.g. ``"{{ data_interval_end }}"``. Empty or ``"None"`` (a manual run has
        no data interval) means no sync constraint.
    :param deferrable: wait in the triggerer instead of a worker slot; defaults to
        ``[operators] default_deferrable``.
    :param max_transient_errors: polls in a row that may fail transiently (5xx, timeouts, 429 after the
        in-call retries) before the task fails with a retryable error. Each poke-mode and deferrable
        wait counts them; in reschedule mode every poke is a fresh process, so a transiently failing
        poke is simply rescheduled and ``timeout`` bounds the wait.

    Plus every :class:`~airflow.sdk.BaseSensorOperator` argument (``poke_interval``, ``timeout``,
    ``mode``, ``soft_fail``, ...). ``soft_fail`` skips on a failure status, a 404 and a timeout in every
    mode; transient trouble beyond ``max_transient_errors`` is a normal (retryable) failure in every mode.
    """

    template_fields: Sequence[str] = ("connection_id", "synced_after")
    ui_color = "#dff3ec"

    def __init__(
        self,
        *,
        connection_id: str,
        partneros_conn_id: str = DEFAULT_CONN_ID,
        target_statuses: Sequence[str] | str = DEFAULT_TARGET_STATUSES,
        failure_statuses: Sequence[str] | str = DEFAULT_FAILURE_STATUSES,
        synced_after: dt.datetime | str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_transient_errors: int = DEFAULT_MAX_TRANSIENT_ERRORS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Fail at DAG parse for everything that is not a template; templates are checked at task start.
        if not is_template(connection_id):
            require_connection_id(connection_id)
        self.target_statuses = normalize_statuses("target_statuses", target_statuses)
        self.failure_statuses = normalize_statuses("failure_statuses", failure_statuses, allow_empty=True)
        check_status_lists(self.target_statuses, self.failure_statuses)
        if not is_template(synced_after):
            parse_synced_after(synced_after)
        if (
            isinstance(max_transient_errors, bool)
            or not isinstance(max_transient_errors, int)
            or (max_transient_errors < 0)
        ):
            raise _exc.PartnerOSConfigError(
                f"max_transient_errors must be a whole number >= 0, got {max_transient_errors!r}."
            )
        self.connection_id = connection_id
        self.partneros_conn_id = partneros_conn_id
        self.synced_after = synced_after
        self.deferrable = deferrable
        self.max_transient_errors = max_transient_errors
        self._hook: PartnerOSHook | None = None
        self._after: pendulum.DateTime | None = None
        self._transient = 0
        self._last_error: PartnerOSError | None = None
        self._status_document: Any = None
        """The last status document read, for OpenLineage (platform, instanceUrl)."""

    # --- running ------------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        self._prepare()
        if self.deferrable:
            self._defer()
        try:
            return super().execute(context)
        finally:
            # Poke mode: the one session of the whole wait. Reschedule mode: this poke's session
            # (the next poke is a new process). Either way nothing stays signed in.
            self._close_hook()

    def _prepare(self) -> None:
        """Re-check the rendered arguments; a bad template value fails here, before any HTTP call."""
        cid, _, _, after = validate_arguments(
            self.connection_id, self.target_statuses, self.failure_statuses, self.synced_after
        )
        self.connection_id = cid
        self._after = after
        self._transient = 0
        if after is None:
            self.log.info(
                "No sync constraint (synced_after is %r): waiting for %s of integration %s only.",
                self.synced_after,
                " or ".join(self.target_statuses),
                cid,
            )
        else:
            self.log.info(
                "Waiting for integration %s to be %s with lastSyncAt at or after %s.",
                cid,
                " or ".join(self.target_statuses),
                after.isoformat(),
            )

    def poke(self, context: Context) -> PokeReturnValue:
        """One status check with this wait's single hook (one sign-in for the whole poke-mode wait)."""
        hook = self._get_hook()
        self._last_error = None
        try:
            document = hook.get_integration_status(self.connection_id)
        except PartnerOSError as err:
            if not err.retryable:
                raise
            self._transient += 1
            self._last_error = err  # a 429's delay lengthens the pause before the next poke
            if self.reschedule:
                # A fresh process per poke cannot count in a row: reschedule, bounded by `timeout`.
                self.log.warning("PartnerOS status check failed transiently; rescheduling: %s", err.message)
                return PokeReturnValue(False)
            if self._transient > self.max_transient_errors:
                raise type(err)(
                    f"{err.message} (failed {self._transient} polls in a row, more than "
                    f"max_transient_errors={self.max_transient_errors}).",
                    method=err.method,
                    endpoint=err.endpoint,
                    status=err.status,
                    code=err.code,
                ) from err
            self.log.warning(
                "PartnerOS status check failed transiently (%d of %d tolerated in a row): %s",
                self._transient,
                self.max_transient_errors,
                err.message,
            )
            return PokeReturnValue(False)
        self._transient = 0
        verdict = evaluate(document, self.target_statuses, self.failure_statuses, self._after)
        if verdict.failed:
            raise PartnerOSIntegrationFailedError(verdict.message)
        self._status_document = document
        self.log.info("%s", verdict.message)
        return PokeReturnValue(verdict.done, xcom_value=document if verdict.done else None)

    def _get_next_poke_interval(self, *args: Any, **kwargs: Any) -> float:
        """BaseSensorOperator's pause before the next poke (a sleep in poke mode, the reschedule date
        in reschedule mode), never shorter than the delay a rate-limited poke was asked to wait."""
        interval: float = super()._get_next_poke_interval(*args, **kwargs)
        return next_poll_delay(interval, self._last_error)

    def on_kill(self) -> None:
        self._close_hook()
        super().on_kill()

    def get_openlineage_facets_on_start(self) -> Any:
        """The integration this sensor reads, for OpenLineage (optional provider; docs/lineage.md)."""
        from airflow_provider_partneros.lineage import operator_lineage

        return operator_lineage(self)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from airflow_provider_partneros.lineage import operator_lineage

        return operator_lineage(self, document=self._status_document)

    def _get_hook(self) -> PartnerOSHook:
        if self._hook is None:
            from airflow_provider_partneros.hooks.partneros import PartnerOSHook

            self._hook = PartnerOSHook(self.partneros_conn_id)
        return self._hook

    def _close_hook(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None:
            hook.close()

    # --- deferrable ---------------------------------------------------------------------------------

    def _defer(self) -> NoReturn:
        from airflow_provider_partneros.triggers.integration import IntegrationStatusTrigger

        timeout = dt.timedelta(seconds=self.timeout)
        deadline = dt.datetime.now(dt.timezone.utc) + timeout
        self.defer(
            trigger=IntegrationStatusTrigger(
                connection_id=self.connection_id,
                partneros_conn_id=self.partneros_conn_id,
                target_statuses=list(self.target_statuses),
                failure_statuses=list(self.failure_statuses),
                synced_after=self._after.isoformat() if self._after is not None else None,
                poke_interval=self.poke_interval,
                max_transient_errors=self.max_transient_errors,
                timeout_at=deadline.isoformat(),
            ),
            method_name="execute_complete",
            timeout=timeout,
        )

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Turn the trigger's event into the status document or the right exception; anything not
        recognised fails the task (fail closed)."""
        if not isinstance(event, dict):
            raise PartnerOSFatalError(
                f"IntegrationStatusSensor got an unrecognised trigger event ({type(event).__name__}); "
                "failing rather than guessing. Check that the triggerer runs the same provider version."
            )
        status = event.get("status")
        message = event.get("message") if isinstance(event.get("message"), str) else None
        if status == "success":
            document = event.get("document")
            verdict = evaluate(document, self.target_statuses, self.failure_statuses, self._rendered_after())
            if not verdict.done:
                raise PartnerOSFatalError(
                    "IntegrationStatusSensor got a success event whose status document does not meet the "
                    f"sensor's conditions ({verdict.message}); failing rather than guessing."
                )
            self._status_document = document
            self.log.info("%s", message or verdict.message)
            return document
        if status == "timeout":
            from airflow.sdk.exceptions import AirflowSensorTimeout

            raise AirflowSensorTimeout(message or "Sensor has timed out.")
        if status == "failure":
            raise _exception_for(event.get("error_class"), message, fatal=True)
        if status == "error":
            raise _exception_for(event.get("error_class"), message, fatal=False)
        raise PartnerOSFatalError(
            f"IntegrationStatusSensor got an unrecognised trigger event status {status!r}; failing rather "
            "than guessing. Check that the triggerer runs the same provider version."
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Like poke mode: ``soft_fail`` skips on failures and timeouts, not on transient trouble."""
        from airflow.sdk.exceptions import AirflowSkipException

        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSkipException as skip:
            cause = skip.__cause__
            if isinstance(cause, PartnerOSError) and cause.retryable:
                raise cause from None
            raise

    def _rendered_after(self) -> pendulum.DateTime | None:
        """On resume the task runs in a new process: parse the re-rendered ``synced_after`` again."""
        return parse_synced_after(self.synced_after)


def _exception_for(error_class: Any, message: str | None, *, fatal: bool) -> Exception:
    """Rebuild the trigger's exception: same class when it is one of ours with the same meaning."""
    text = message or ("PartnerOS integration check failed." if fatal else "PartnerOS was unreachable.")
    cls = getattr(_exc, error_class, None) if isinstance(error_class, str) else None
    if isinstance(cls, type) and issubclass(cls, PartnerOSError) and cls.retryable is not fatal:
        return cls(text)
    if fatal:
        return PartnerOSIntegrationFailedError(text) if error_class is None else PartnerOSFatalError(text)
    return PartnerOSError(text)


__all__ = ["IntegrationStatusSensor"]
