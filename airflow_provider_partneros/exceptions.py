"""One exception class per outcome a DAG author handles differently.

Two families, told apart by their base class so Airflow does the right thing with no extra code:

* :class:`PartnerOSFatalError` subclasses derive from ``AirflowFailException``: the task fails at once
  and skips its remaining retries, because retrying cannot help (wrong password, forbidden role, no
  active organization, quota exhausted, unknown id, bad request, bad configuration).
* Everything else derives from plain ``AirflowException``: Airflow's normal ``retries`` apply (expired
  session, rate limit, 5xx, network trouble, an answer cut off or garbled on the way).

Every message names the endpoint, says what happened and what to do, and never contains a password,
cookie or token: messages are built only from status codes, the service's error text and ids.
"""

from __future__ import annotations

from collections.abc import Mapping

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class PartnerOSError(AirflowException):
    """Base of every PartnerOS error; catch this to handle them all.

    :param message: full human text (already includes what to do).
    :param method: HTTP method of the failed call, if any.
    :param endpoint: path of the failed call (never the full URL with credentials).
    :param status: HTTP status, if an answer arrived.
    :param code: the service's machine-readable error code, if it sent one.
    """

    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        endpoint: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.code = code

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword attributes when pickled (executors and triggers may ship exceptions around).
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[PartnerOSError], message: str, state: dict[str, object]) -> PartnerOSError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    return exc


class PartnerOSFatalError(PartnerOSError, AirflowFailException):
    """Retrying cannot help: the task fails without using its retries."""

    retryable = False


# --- fatal: fix something, then rerun -------------------------------------------------------------


class PartnerOSConfigError(PartnerOSFatalError):
    """The Airflow connection or an operator argument is unusable (checked before any HTTP call)."""


class PartnerOSInvalidCredentialsError(PartnerOSFatalError):
    """Sign-in refused: wrong email or password, unverified email, or a malformed sign-in request."""


class PartnerOSForbiddenError(PartnerOSFatalError):
    """Signed in, but not allowed: the user's role, or the Origin check (base URL is not the service's)."""


class PartnerOSNoActiveOrganizationError(PartnerOSFatalError):
    """The session has no (usable) active organization; set the connection's ``organization_id``."""


class PartnerOSNotFoundError(PartnerOSFatalError):
    """Unknown id, or one that belongs to another organization than the session's active one."""


class PartnerOSQuotaExceededError(PartnerOSFatalError):
    """HTTP 402: the organization's AI quota is exhausted."""


class PartnerOSBadRequestError(PartnerOSFatalError):
    """HTTP 400/405/413/415/422 and similar: the request itself is wrong."""


class PartnerOSConflictError(PartnerOSFatalError):
    """HTTP 409: the resource already exists or is in a conflicting state (e.g. a duplicate submit)."""


class PartnerOSTLSError(PartnerOSFatalError):
    """The server's certificate could not be verified; set ``verify`` to the right CA bundle."""


class PartnerOSRedirectError(PartnerOSFatalError):
    """The service redirected somewhere the session cookie must not follow (another origin)."""


class PartnerOSIntegrationFailedError(PartnerOSFatalError):
    """A CRM integration reached a failure status (``error``, ``disconnected``, ``reauth_required``)."""


class PartnerOSBatchFatalError(PartnerOSFatalError):
    """Partners of a batch failed, every one for a reason retrying cannot fix (e.g. unknown ids).

    The others' results are in the task's XCom; ``failures`` maps each failed id to its error.
    """

    def __init__(
        self, message: str, *, failures: Mapping[str, object] | None = None, **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.failures = dict(failures or {})


# --- retryable: Airflow's retries can help ---------------------------------------------------------


class PartnerOSSessionExpiredError(PartnerOSError):
    """The session was refused even right after a fresh sign-in (HTTP 401 twice)."""


class PartnerOSRateLimitedError(PartnerOSError):
    """HTTP 429 that outlasted the in-call retries; ``retry_after`` holds the server's delay if given."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class PartnerOSUnavailableError(PartnerOSError):
    """5xx, a proxy error page, a refused or dropped connection, or a timeout."""


class PartnerOSUnexpectedResponseError(PartnerOSError):
    """An answer that is not what the API promises (malformed JSON, cut-off body, wrong shape)."""


class PartnerOSCancelledError(PartnerOSError):
    """The task was killed (marked failed, timed out) while this call waited to start: it never sent."""


class PartnerOSBatchError(PartnerOSError):
    """Partners of a batch failed, at least one for a reason a retry can fix (429, 5xx, network).

    The others' results are in the task's XCom (and, on Airflow 3.3+, kept for the retry, which redoes
    only the failed partners); ``failures`` maps each failed id to its error.
    """

    def __init__(
        self, message: str, *, failures: Mapping[str, object] | None = None, **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.failures = dict(failures or {})


__all__ = [
    "PartnerOSBadRequestError",
    "PartnerOSBatchError",
    "PartnerOSBatchFatalError",
    "PartnerOSCancelledError",
    "PartnerOSConfigError",
    "PartnerOSConflictError",
    "PartnerOSError",
    "PartnerOSFatalError",
    "PartnerOSForbiddenError",
    "PartnerOSIntegrationFailedError",
    "PartnerOSInvalidCredentialsError",
    "PartnerOSNoActiveOrganizationError",
    "PartnerOSNotFoundError",
    "PartnerOSQuotaExceededError",
    "PartnerOSRateLimitedError",
    "PartnerOSRedirectError",
    "PartnerOSSessionExpiredError",
    "PartnerOSTLSError",
    "PartnerOSUnavailableError",
    "PartnerOSUnexpectedResponseError",
]
