"""How the API answers a hubsight error: one table from error class to HTTP status.

Every error body has the same shape, ``{"error": ..., "hint": ...}``; query syntax errors add
the line, the column and a caret excerpt; a refused setting names its ``field``. The header
``X-Hubsight-Error`` says ``usage`` when the request's input is at fault, else ``failure``: the
command line, asking the running service, exits with the code it would have given alone (2, 1).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from hubsight.errors import (
    AlreadyExistsError,
    ConfigError,
    ForbiddenError,
    HubsightError,
    NotFoundError,
    QueryError,
    QuerySyntaxError,
    RequestTooLarge,
    SecretRequired,
    SettingError,
    SignInRequired,
    is_usage_error,
)

ERROR_KIND_HEADER = "X-Hubsight-Error"

# Most specific first: the first class the error is an instance of gives its status.
_STATUS: tuple[tuple[type[HubsightError], int], ...] = (
    (SignInRequired, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (RequestTooLarge, 413),
    (SecretRequired, 422),
    (ConfigError, 400),
    (QueryError, 400),
)


def status_of(exc: HubsightError) -> int:
    """The HTTP status of an error (500 for a failure that is not the caller's)."""
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 500)


def error_response(exc: HubsightError) -> JSONResponse:
    """A hubsight error as JSON; query errors carry their position and excerpt."""
    body: dict[str, Any] = {"error": exc.message, "hint": exc.hint or None}
    if isinstance(exc, QuerySyntaxError):
        body.update(line=exc.line, column=exc.column, excerpt=exc.excerpt)
    if isinstance(exc, SettingError):
        body["field"] = exc.field
    return JSONResponse(
        body, status_code=status_of(exc), headers=error_kind(usage=is_usage_error(exc))
    )


def error_kind(*, usage: bool) -> dict[str, str]:
    """The header saying whether the caller's input is at fault (the CLI's exit code 2)."""
    return {ERROR_KIND_HEADER: "usage" if usage else "failure"}
