"""Errors in ARM's shape: {"error": {"code", "message", "target", "details"}}, from the one
error tree in shared.errors (each class carries its status and ARM code)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import InvalidField, InvalidFields, PacketWatchError, field_path


def error_response(error: PacketWatchError) -> JSONResponse:
    return JSONResponse(error.to_arm(), status_code=error.status, headers=error.headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PacketWatchError)
    async def _ours(_: Request, exc: PacketWatchError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [InvalidField(field_path(tuple(p for p in e["loc"] if p not in ("body", "query", "path"))),
                               e.get("input"), e["msg"]) for e in exc.errors()]
        return error_response(InvalidFields.of(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HttpError")
        return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code)
