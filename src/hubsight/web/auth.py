"""Who may use the console and the API on the TCP listener, and what each role may change.

A request is authenticated by an API token (``Authorization: Bearer hs_...``, for scripts) or by
the session cookie a browser gets at ``/login``. A cookie is sent by the browser on its own, so a
state-changing request that authenticates with it must also carry the session's CSRF token in the
``X-CSRF-Token`` header, which another site's page cannot read. Analysts search and triage;
changing sources, rules and accounts takes an admin. The Unix-socket app runs without this: the
socket is the owner's alone (mode 0600).
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hubsight.errors import ConfigError
from hubsight.store.users import (
    Account,
    Role,
    Session,
    SessionExpired,
    SessionLimits,
    UserStore,
)
from hubsight.web.monitor_routes import PROBES
from hubsight.web.rendering import render

SESSION_COOKIE = "hubsight_session"
CSRF_HEADER = "x-csrf-token"
LOCAL_ADMIN = Account("local", "admin")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC = frozenset({"/health", "/login"})
_ADMIN_ONLY = (
    "/api/v1/event-sources",
    "/api/v1/rules",
    "/api/v1/notify",
    "/api/v1/accounts",
    "/api/v1/retention",
)
SESSION_IDLE_ENV = "HUBSIGHT_SESSION_IDLE"
SESSION_MAX_ENV = "HUBSIGHT_SESSION_MAX"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])?$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# What the login page says after the middleware sent a browser there from an ended session.
EXPIRED_MESSAGES = {
    "idle": "Your session expired after a period without activity. Sign in again.",
    "max": "Your session reached its maximum length. Sign in again.",
}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LoginLimiter:
    """At most ``attempts`` failed sign-ins per client address and per name in ``window_s``.

    The failures are counted in the accounts' SQLite file, so they outlive a restart.
    """

    attempts: int = 5
    window_s: float = 300.0


def _seconds(variable: str, default: float) -> float:
    text = os.environ.get(variable, "").strip().lower()
    if not text:
        return default
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(
            f"{variable}={text!r} is not a duration",
            hint="write a positive number with s, m, h or d, e.g. 30m or 12h",
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def session_limits_from_env() -> SessionLimits:
    """Session lifetimes from HUBSIGHT_SESSION_IDLE and HUBSIGHT_SESSION_MAX (default 30m, 12h)."""
    default = SessionLimits()
    return SessionLimits(
        idle_s=_seconds(SESSION_IDLE_ENV, default.idle_s),
        max_s=_seconds(SESSION_MAX_ENV, default.max_s),
    )


@dataclass(frozen=True)
class ConsoleAuth:
    """Authentication settings of one app: the accounts, cookie security and the limits."""

    users: UserStore
    # None: Secure cookies exactly when the request came over https (TLS or a trusted proxy).
    secure_cookies: bool | None = None
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    sessions: SessionLimits = field(default_factory=session_limits_from_env)
    # /metrics without a token: only when the console listens on a loopback address only.
    open_metrics: bool = False


class AuthMiddleware:
    """Puts the caller's account in ``request.state.account`` or answers 401/403 itself."""

    def __init__(self, app: ASGIApp, auth: ConsoleAuth | None) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if self.auth is None:
            state["account"], state["csrf"] = LOCAL_ADMIN, ""
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if (
            path in _PUBLIC
            or path in PROBES
            or path.startswith("/static/")
            or (path == "/metrics" and self.auth.open_metrics)
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        # The look-up reads SQLite: keep it off the event loop.
        denied = await anyio.to_thread.run_sync(_check, self.auth, request, state)
        if denied is not None:
            await denied(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _check(auth: ConsoleAuth, request: Request, state: dict[str, Any]) -> Response | None:
    method, path = request.method, request.url.path
    bearer = request.headers.get("authorization", "")
    account: Account | None = None
    csrf = ""
    if bearer.lower().startswith("bearer "):
        account = auth.users.token_account(bearer[7:].strip())
        if account is None:
            return _error(401, "the API token is not valid", "create a new token in Settings")
    else:
        session_id = request.cookies.get(SESSION_COOKIE)
        session = auth.users.session(session_id, auth.sessions) if session_id else None
        if not isinstance(session, Session):
            return _signed_out(method, path, session)
        account, csrf = session.account, session.csrf
        sent = request.headers.get(CSRF_HEADER, "").encode()
        if method not in _SAFE and not hmac.compare_digest(sent, csrf.encode()):
            return _error(403, "the CSRF token is missing or wrong", "reload the page")
    if (
        account.role != "admin"
        and method not in _SAFE
        and path.startswith(_ADMIN_ONLY)
        and not path.endswith("/test")
    ):
        return _error(403, f"the {account.role} role cannot change this", "ask an admin")
    state["account"], state["csrf"] = account, csrf
    return None


def _signed_out(method: str, path: str, ended: SessionExpired | None) -> Response:
    """To the login page for a page view, else 401; both end the cookie of an expired session."""
    response: Response
    # Pages go to the login form; the API and /metrics (read by machines) answer 401.
    if method in _SAFE and not path.startswith("/api/") and path != "/metrics":
        expired = f"&expired={ended.reason}" if ended else ""
        response = RedirectResponse(f"/login?next={quote(path)}{expired}", status_code=303)
    elif ended is not None:
        body = {"error": "the session expired", "hint": "sign in again", "expired": ended.reason}
        response = JSONResponse(body, status_code=401)
    else:
        return _error(401, "sign in required", "sign in at /login or send an API token")
    if ended is not None:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _error(status: int, message: str, hint: str) -> JSONResponse:
    return JSONResponse({"error": message, "hint": hint}, status_code=status)


def current_account(request: Request) -> Account:
    """The caller (the local admin on the Unix socket)."""
    account: Account = getattr(request.state, "account", LOCAL_ADMIN)
    return account


def _auth(request: Request) -> ConsoleAuth | None:
    auth: ConsoleAuth | None = request.app.state.auth
    return auth


def _safe_next(target: str) -> str:
    # Only paths on this server: "//host" and "/\host" would leave it.
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


router = APIRouter()


@router.post("/login", response_model=None)
def login(
    request: Request,
    name: str = Form(max_length=64),
    password: str = Form(max_length=1024),
    next_path: str = Form(default="/", alias="next"),
) -> Response:
    """Check a password, rate-limited, and set the session cookie."""
    auth = _auth(request)
    if auth is None:
        return RedirectResponse(_safe_next(next_path), status_code=303)
    client = request.client.host if request.client else "unknown"
    name_key = f"name:{name.lower()}"
    keys = (f"ip:{client}", name_key)
    limit = auth.limiter
    wait = auth.users.login_wait(keys, limit.attempts, limit.window_s)
    if wait > 0:
        message = (
            "Too many failed sign-ins for this user or from this address; "
            f"try again in {_in_words(wait)}."
        )
        return _login_page(request, message, 429, wait, next_path)
    account = auth.users.check_password(name, password)
    if account is None:
        auth.users.login_failed(keys, limit.window_s)
        return _login_page(request, "Wrong user name or password.", 401, 0, next_path)
    # Only the name's count ends: one good password must not wipe an address's failed guesses
    # at other accounts.
    auth.users.login_succeeded(name_key)
    session_id, _ = auth.users.open_session(account, auth.sessions)
    response = RedirectResponse(_safe_next(next_path), status_code=303)
    secure = auth.secure_cookies
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" if secure is None else secure,
        path="/",
    )
    return response


def _in_words(seconds: float) -> str:
    whole = int(seconds) + 1
    if whole < 90:
        return f"{whole} seconds"
    return f"{round(whole / 60)} minutes"


def _login_page(
    request: Request, message: str, status: int, wait: float, next_path: str
) -> Response:
    headers = {"Retry-After": str(int(wait) + 1)} if wait else None
    context = {"error": message, "next": _safe_next(next_path)}
    response = render(request, "login.html", context, status)
    if headers:
        response.headers.update(headers)
    return response


@router.post("/logout", response_model=None)
def logout(request: Request) -> Response:
    """End the session."""
    auth = _auth(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    if auth is not None and session_id:
        auth.users.close_session(session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


class NewAccount(BaseModel):
    """An account to create from the console."""

    model_config = ConfigDict(extra="forbid")

    name: str
    password: str = Field(min_length=1, max_length=1024)
    role: Role = "analyst"


class NewToken(BaseModel):
    """An API token for the caller."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=100)


def _users(request: Request) -> UserStore:
    auth = _auth(request)
    if auth is None:
        raise ConfigError(
            "accounts are managed on the web listener", hint="use `hubsight users` here"
        )
    return auth.users


@router.get("/api/v1/accounts")
def list_accounts(request: Request) -> list[dict[str, str]]:
    """Every console account (names and roles)."""
    return [{"name": a.name, "role": a.role} for a in _users(request).accounts()]


@router.post("/api/v1/accounts", status_code=201)
def create_account(request: Request, body: NewAccount) -> dict[str, str]:
    """Create an account (admins only)."""
    account = _users(request).create(body.name, body.password, body.role)
    return {"name": account.name, "role": account.role}


@router.delete("/api/v1/accounts/{name}", status_code=204)
def delete_account(request: Request, name: str) -> None:
    """Delete an account with its sessions and tokens (admins only; never the last admin)."""
    users = _users(request)
    admins = [a.name for a in users.accounts() if a.role == "admin"]
    if admins == [name]:
        raise ConfigError(
            f"'{name}' is the last admin", hint="create another admin before deleting this one"
        )
    users.delete(name)


@router.post("/api/v1/tokens", status_code=201)
def create_token(request: Request, body: NewToken) -> dict[str, str]:
    """An API token for the caller, shown only in this answer."""
    account = current_account(request)
    return {"token": _users(request).issue_token(account.name, body.label), "label": body.label}
