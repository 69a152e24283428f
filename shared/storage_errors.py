"""Which storage failures another try may mend, for every caller of Blob Storage."""

from __future__ import annotations

from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError, ServiceResponseError


def error_code(error: HttpResponseError) -> str | None:
    """The service's error code, as it spells it (the SDK may give its StorageErrorCode enum)."""
    code = getattr(error, "error_code", None)
    return getattr(code, "value", code)


def is_transient(error: BaseException, also: frozenset[str] = frozenset()) -> bool:
    """The network, a timeout, throttling, the service's own trouble (408, 429, 5xx), or one of
    the error codes `also` names."""
    if isinstance(error, (ServiceRequestError, ServiceResponseError)):
        return True
    if isinstance(error, HttpResponseError):
        return error.status_code is None or error.status_code in (408, 429) or error.status_code >= 500 \
            or error_code(error) in also
    return isinstance(error, AzureError)
