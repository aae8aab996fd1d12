"""BatchAnalyzePartnersOperator: enrich many partners in one task, with bounded concurrency and one session.

Mapping :class:`~airflow_provider_partneros.operators.AnalyzePartnerOperator` gives one task (one
process, one Airflow import, one UI row) per partner; this operator gives one task for the whole list.
See docs/operators.md, "When to map and when to batch", for the measured difference.

Retries redo only the partners that failed. Airflow deletes a task's XComs when a new try starts
(``ti_run`` sends ``xcom_keys_to_clear``; the task runner deletes them before ``execute``), so the
previous try's XCom is gone by then. The successes are kept in Airflow 3.3's ``task_state_store``
instead, which is scoped to (dag run, task, map index) and shared by every try of the task instance
on purpose. It is emptied when the task succeeds. Airflow 3.2 has no such store: there every try
enriches every partner again (PartnerOS caches enrichments per domain for 7 days, so a repeat costs
a request, not a second AI analysis).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from airflow_provider_partneros import _batch
from airflow_provider_partneros._protocol.arguments import is_unresolved
from airflow_provider_partneros.exceptions import (
    PartnerOSBatchError,
    PartnerOSBatchFatalError,
    PartnerOSCancelledError,
    PartnerOSConfigError,
)
from airflow_provider_partneros.operators.partneros import BasePartnerOSOperator, redact_secrets
from airflow_provider_partneros.version_compat import task_state_store

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

    from airflow_provider_partneros.hooks.partneros import PartnerOSHook

STATE_KEY = "partneros_analyze_partners"
"""``task_state_store`` key of the index; the enrichments sit in ``STATE_KEY:0``, ``STATE_KEY:1``, ..."""
STATE_CHUNK_BYTES = 60_000
"""Each stored value stays under Airflow's default ``[state_store] max_value_storage_bytes`` (64 KiB)."""


class BatchAnalyzePartnersOperator(BasePartnerOSOperator):
    """AI-enrich a list of partners in one task (``POST /api/partners/{id}/analyze`` for each).

    :param partner_ids: the partners' ids (templated): a list, an upstream task's output (XCom list), or
        a template that renders to a list (with ``render_template_as_native_obj=True`` on the DAG). An id
        given twice is enriched once.
    :param max_concurrency: enrichments in flight at once (1-64, default 8), all through one session.

    Every partner is tried, whatever happens to the others. A 429 pauses the whole batch for the
    server's delay; 5xx and network errors are retried per partner inside the call, as for one
    ``AnalyzePartnerOperator``. Errors every partner would meet (credentials, role, organization,
    quota, TLS) stop the batch at the first one.

    XCom: ``{partner_id: {"partner": ..., "aiInsights": ...}}`` for each enriched partner and
    ``{partner_id: {"error": {"class", "message", "retryable"}}}`` for each failed one, pushed even
    when the task fails. The task fails, after every other partner finished, when any partner failed:
    without retries (:class:`PartnerOSBatchFatalError`) when every failure is one retrying cannot fix
    (e.g. unknown ids), otherwise with Airflow's retries (:class:`PartnerOSBatchError`), and a retry
    enriches only the partners that failed (Airflow 3.3+; see the module docstring).
    """

    template_fields: Sequence[str] = ("partneros_conn_id", "partner_ids")
    template_fields_renderers: ClassVar[dict[str, str]] = {"partner_ids": "json"}

    def __init__(
        self,
        *,
        partner_ids: Sequence[str] | XComArg | str,
        max_concurrency: int = _batch.DEFAULT_MAX_CONCURRENCY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not is_unresolved(partner_ids):
            _check_partner_ids(partner_ids)
        if (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or not 1 <= max_concurrency <= _batch.MAX_CONCURRENCY
        ):
            raise PartnerOSConfigError(
                f"max_concurrency must be an integer from 1 to {_batch.MAX_CONCURRENCY}, "
                f"got {max_concurrency!r}."
            )
        self.partner_ids = partner_ids
        self.max_concurrency = max_concurrency
        self._cancel: threading.Event | None = None
        """The running try's kill switch (made in ``call``: an Event cannot be deep-copied with the task)."""

    def validate(self) -> None:
        _check_partner_ids(self.partner_ids)

    def call(self, hook: PartnerOSHook, context: Context) -> Any:
        ids = _batch.unique(cast("Sequence[str]", self.partner_ids))
        store = task_state_store(cast("dict[str, Any]", context))
        wanted = set(ids)
        previous = {pid: value for pid, value in _load(store).items() if pid in wanted}
        todo = [pid for pid in ids if pid not in previous]
        if previous:
            self.log.info(
                "%d of %d partners were enriched by an earlier try of this task; enriching the other %d.",
                len(previous),
                len(ids),
                len(todo),
            )
        else:
            self.log.info(
                "Enriching %d partners, up to %d at a time.", len(todo), min(self.max_concurrency, len(todo))
            )
        self._cancel = cancel = threading.Event()
        batch = (
            hook.batch_analyze_partners(todo, max_concurrency=self.max_concurrency, cancel=cancel)
            if todo
            else None
        )
        results = {**previous, **(batch.results if batch else {})}
        errors = batch.errors if batch else {}
        outcome = {
            pid: redact_secrets(results[pid]) if pid in results else {"error": errors[pid].to_json()}
            for pid in ids
        }
        if not errors:
            self.log.info("Enriched all %d partners.", len(ids))
            _clear(store)
            return outcome
        if store is not None:
            _save(store, {pid: redact_secrets(value) for pid, value in results.items()})
        if self.do_xcom_push:
            context["ti"].xcom_push(key="return_value", value=outcome)
        if cancel.is_set():
            raise PartnerOSCancelledError(
                f"The task was killed: {len(results)} of {len(ids)} partners are enriched"
                + (" and kept for the retry, which enriches only the other " if store is not None else "; ")
                + f"{len(ids) - len(results)} were not (no call started after the kill)."
            )
        raise _failure(len(ids), errors, kept=store is not None)

    def on_kill(self) -> None:
        """Stop the batch when the task is killed (marked failed, ``execution_timeout``).

        No partner's call, retry or sign-in starts after this; calls in flight end within the
        connection's timeout, then ``call`` keeps the enriched partners for the retry (Airflow 3.3's
        ``task_state_store``) and fails. The hook is closed here, so this task's hold on the host's
        shared session ends now and the session is signed out after its linger, as after any task.
        """
        cancel = self._cancel
        if cancel is not None:
            cancel.set()
            self.log.warning("Task killed: no further PartnerOS call of this batch starts.")
        super().on_kill()


def _check_partner_ids(value: Any) -> None:
    if isinstance(value, str):
        raise PartnerOSConfigError(
            f"partner_ids must be a list of ids, got the string {value[:200]!r}. Pass a list, an upstream "
            "task's output (XCom), or render templates as Python objects (render_template_as_native_obj=True "
            "on the DAG)."
        )
    if not isinstance(value, Sequence) and not callable(getattr(value, "__iter__", None)):
        raise PartnerOSConfigError(f"partner_ids must be a list of ids, got {type(value).__name__}.")
    bad = [item for item in value if not isinstance(item, str) or not item.strip()]
    if bad:
        raise PartnerOSConfigError(
            f"partner_ids must hold non-empty strings only; {len(bad)} do not, e.g. {bad[:3]!r}."
        )


def _failure(total: int, errors: dict[str, _batch.ItemError], *, kept: bool) -> Exception:
    retryable = sorted(pid for pid, err in errors.items() if err.retryable)
    summary = (
        f"{len(errors)} of {total} partners failed ({len(retryable)} retryable, "
        f"{len(errors) - len(retryable)} not); the other {total - len(errors)} are enriched. "
        "XCom return_value maps every partner id to its enrichment or its error."
    )
    failures = {pid: err.to_json() for pid, err in errors.items()}
    listing = _batch.summarize_failures(errors)
    if not retryable:
        return PartnerOSBatchFatalError(
            f"{summary} Retrying cannot fix these (fix the ids or the data, then clear the task):\n{listing}",
            failures=failures,
        )
    again = (
        "A retry enriches only the failed partners."
        if kept
        else "A retry enriches every partner again (Airflow < 3.3 has no task_state_store to keep them)."
    )
    return PartnerOSBatchError(f"{summary} {again}\n{listing}", failures=failures)


# --- the successes of earlier tries (task_state_store, Airflow 3.3+) --------------------------------


def _load(store: Any) -> dict[str, Any]:
    if store is None:
        return {}
    index = store.get(STATE_KEY)
    if not isinstance(index, dict):
        return {}
    done: dict[str, Any] = {}
    for n in range(int(index.get("chunks", 0))):
        chunk = store.get(f"{STATE_KEY}:{n}")
        if isinstance(chunk, dict):
            done.update(chunk)
    return done


def _save(store: Any, done: dict[str, Any]) -> None:
    """Chunks first, then the index: a crash in between leaves an index naming only valid chunks."""
    chunks: list[dict[str, Any]] = [{}]
    size = 0
    for pid, value in done.items():
        item_size = len(json.dumps({pid: value}))
        if chunks[-1] and size + item_size > STATE_CHUNK_BYTES:
            chunks.append({})
            size = 0
        chunks[-1][pid] = value
        size += item_size
    old = _chunk_count(store)
    for n, chunk in enumerate(chunks):
        store.set(f"{STATE_KEY}:{n}", chunk)
    store.set(STATE_KEY, {"chunks": len(chunks), "partners": len(done)})
    for n in range(len(chunks), old):
        store.delete(f"{STATE_KEY}:{n}")


def _clear(store: Any) -> None:
    if store is None:
        return
    old = _chunk_count(store)
    if not old:
        return
    store.delete(STATE_KEY)
    for n in range(old):
        store.delete(f"{STATE_KEY}:{n}")


def _chunk_count(store: Any) -> int:
    index = store.get(STATE_KEY)
    return int(index.get("chunks", 0)) if isinstance(index, dict) else 0


__all__ = ["BatchAnalyzePartnersOperator"]
