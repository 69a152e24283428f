"""PacketWatch's one error tree. Each class carries the HTTP status and the ARM error code
it is answered with, so one handler turns any of them into ARM's error shape:
`{"error": {"code", "message", "target", "details"}}`.

    PacketWatchError (500 InternalServerError)
    ├── InvalidRequest (400)
    │   ├── InvalidField (InvalidParameter) ── InvalidFields (every bad value of one body)
    │   ├── AgentNotFound
    │   ├── MissingApiVersion (MissingApiVersionParameter)
    │   └── InvalidApiVersion (InvalidApiVersionParameter)
    ├── AuthenticationFailed (401) ── InvalidAuthenticationToken, FunctionKeyRequired
    ├── AuthorizationFailed (403)
    ├── CaptureNotFound (404 NotFound)
    ├── Conflict (409) ── CaptureConflict, UploadPending, CaptureFileNotReady
    ├── PayloadTooLarge (413)
    └── ServiceUnavailable (503, Retry-After) ── BrokerUnavailable
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

T = TypeVar("T")


def field_path(loc: tuple[object, ...]) -> str:
    """pydantic's error location as the field path users write: `properties.filters[1].localPort`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _closest(name: str, known_names: Iterable[str]) -> str | None:
    """The known name `name` most likely misspells: one it begins, else the most alike."""
    spelled = {known.lower(): known for known in known_names}
    given = name.lower()
    starts = sorted(known for known in spelled if known.startswith(given) and len(given) >= 4)
    close = starts or difflib.get_close_matches(given, list(spelled), n=1, cutoff=0.6)
    return spelled[close[0]] if close else None


class PacketWatchError(Exception):
    status = 500
    code = "InternalServerError"

    def __init__(self, message: str, target: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.message = message
        self.target = target
        self.headers = headers or {}
        super().__init__(message)

    def details(self) -> list[dict[str, Any]]:
        return []

    def to_arm(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details():
            error["details"] = self.details()
        return {"error": error}


class InvalidRequest(PacketWatchError):
    status = 400
    code = "InvalidRequestContent"


class InvalidField(InvalidRequest, ValueError):
    """A value supplied by a user is not acceptable; names the field and the value."""

    code = "InvalidParameter"

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {value!r} is not valid: {reason}", field)

    @classmethod
    def from_validation(cls, error: ValidationError, prefix: str = "",
                        known_names: Iterable[str] = ()) -> "InvalidField":
        """Every problem pydantic found, each with its field path under `prefix`; an
        unknown property close to one of `known_names` says which it may have meant."""
        found = []
        for problem in error.errors():
            where = field_path(problem["loc"])
            field = f"{prefix}.{where}" if prefix and where else (prefix or where or "body")
            reason = problem["msg"]
            if problem["type"] == "extra_forbidden":
                reason = "is not a property here; unknown properties are refused, not ignored"
                close = _closest(str(problem["loc"][-1]) if problem["loc"] else "", known_names)
                if close:
                    reason += f" (did you mean {close!r}?)"
            found.append(cls(field, problem.get("input"), reason))
        return InvalidFields.of(found)

    def at(self, prefix: str) -> "InvalidField":
        """The same error with its field placed under `prefix` (e.g. 'filters[1]')."""
        return InvalidField(f"{prefix}.{self.field}" if self.field else prefix, self.value, self.reason)

    def each(self) -> list["InvalidField"]:
        return [self]

    def details(self) -> list[dict[str, Any]]:
        return [{"code": e.code, "message": str(e), "target": e.field} for e in self.each()]


class InvalidFields(InvalidField):
    """Several bad values of one request, reported together (the first one leads)."""

    def __init__(self, errors: list[InvalidField]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.field, first.value, first.reason)
        self.message = f"{len(errors)} invalid values: " + "; ".join(str(e) for e in errors)
        self.args = (self.message,)

    @classmethod
    def of(cls, errors: list[InvalidField]) -> InvalidField:
        flat = [single for error in errors for single in error.each()]
        return flat[0] if len(flat) == 1 else cls(flat)

    def at(self, prefix: str) -> "InvalidField":
        return InvalidFields([error.at(prefix) for error in self.errors])

    def each(self) -> list[InvalidField]:
        return list(self.errors)

    def __str__(self) -> str:
        return self.message


class Collector:
    """Gathers the InvalidField errors of several independent checks, to raise them as one."""

    def __init__(self) -> None:
        self.errors: list[InvalidField] = []

    def check(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """The function's result, or None after noting the InvalidField it raised."""
        try:
            return function(*args, **kwargs)
        except InvalidField as exc:
            self.errors.append(exc)
            return None

    def raise_any(self) -> None:
        if self.errors:
            raise InvalidFields.of(self.errors)


class AgentNotFound(InvalidRequest):
    """The target VM has never had an agent report (only with PACKETWATCH_REQUIRE_KNOWN_AGENT), or no
    instance of a scale set target in scope has one."""

    code = "AgentNotFound"


class MissingApiVersion(InvalidRequest):
    code = "MissingApiVersionParameter"


class InvalidApiVersion(InvalidRequest):
    code = "InvalidApiVersionParameter"


class AuthenticationFailed(PacketWatchError):
    status = 401
    code = "AuthenticationFailed"


class InvalidAuthenticationToken(AuthenticationFailed):
    code = "InvalidAuthenticationToken"


class FunctionKeyRequired(AuthenticationFailed):
    code = "Unauthorized"


class AuthorizationFailed(PacketWatchError):
    status = 403
    code = "AuthorizationFailed"


class WatcherNotFound(PacketWatchError, LookupError):
    status = 404
    code = "NotFound"

    def __init__(self, watcher_id: str) -> None:
        super().__init__(f"network watcher {watcher_id} was not found: it holds no capture, and no agent of its "
                         "subscription reports from its region", watcher_id)


class CaptureNotFound(PacketWatchError, LookupError):
    status = 404
    code = "NotFound"

    def __init__(self, capture_id: str) -> None:
        self.capture_id = capture_id
        super().__init__(f"packet capture {capture_id} was not found", capture_id)


class Conflict(PacketWatchError):
    status = 409
    code = "Conflict"


class CaptureConflict(Conflict):
    """A capture with that name exists and cannot be replaced in its current state."""

    code = "PacketCaptureConflict"

    def __init__(self, capture_id: str, reason: str) -> None:
        self.capture_id = capture_id
        self.reason = reason
        super().__init__(f"packet capture {capture_id}: {reason}", capture_id)


class UploadPending(Conflict):
    code = "UploadPending"


class CaptureFileNotReady(Conflict):
    code = "CaptureFileNotReady"


class PayloadTooLarge(PacketWatchError):
    status = 413
    code = "PayloadTooLarge"


class ServiceUnavailable(PacketWatchError):
    status = 503
    code = "ServiceUnavailable"
    RETRY_AFTER_SECONDS = "5"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": self.RETRY_AFTER_SECONDS})


class BrokerUnavailable(ServiceUnavailable):
    """The broker did not take (and confirm) the message; of a batch, `confirmed` it took first."""

    def __init__(self, reason: str, confirmed: int = 0) -> None:
        super().__init__(f"the message broker is unavailable: {reason}")
        self.confirmed = confirmed
