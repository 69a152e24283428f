"""Errors in ARM's shape: {"error": {"code", "message", "target"}}."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.arm import ErrorDetails, ErrorResponse
from functions.dispatch import BrokerUnavailable
from shared.errors import CaptureConflict, CaptureNotFound, InvalidField, field_path


RETRY_AFTER_SECONDS = "5"


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, target: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}
        super().__init__(message)


def arm_error_response(status: int, code: str, message: str, target: str | None = None,
                       headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetails(code=code, message=message, target=target)).to_arm()
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ArmError)
    async def _arm(_: Request, exc: ArmError) -> JSONResponse:
        return arm_error_response(exc.status, exc.code, exc.message, exc.target, exc.headers)

    @app.exception_handler(InvalidField)
    async def _invalid(_: Request, exc: InvalidField) -> JSONResponse:
        return arm_error_response(400, "InvalidParameter", str(exc), exc.field)

    @app.exception_handler(CaptureNotFound)
    async def _missing(_: Request, exc: CaptureNotFound) -> JSONResponse:
        return arm_error_response(404, "NotFound", str(exc), exc.capture_id)

    @app.exception_handler(CaptureConflict)
    async def _conflict(_: Request, exc: CaptureConflict) -> JSONResponse:
        return arm_error_response(409, "PacketCaptureConflict", str(exc), exc.capture_id)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        target = field_path(tuple(part for part in first["loc"] if part not in ("body", "query", "path")))
        return arm_error_response(400, "InvalidParameter", f"{target}: {first['msg']}", target)

    @app.exception_handler(BrokerUnavailable)
    async def _broker(_: Request, exc: BrokerUnavailable) -> JSONResponse:
        return arm_error_response(503, "ServiceUnavailable", f"the message broker is unavailable: {exc}",
                                  headers={"Retry-After": RETRY_AFTER_SECONDS})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HttpError")
        return arm_error_response(exc.status_code, code, str(exc.detail))
