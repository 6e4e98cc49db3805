"""Who may use the console and the API on the TCP listener, and what each role may change.

A request is authenticated by an API token (``Authorization: Bearer hs_...``, for scripts) or by
the session cookie a browser gets at ``/login``. A cookie is sent by the browser on its own, so a
state-changing request that authenticates with it must also carry the session's CSRF token in the
``X-CSRF-Token`` header, which another site's page cannot read. Analysts search and triage;
changing sources, rules and accounts takes an admin.

Every route declares who may call it where it is defined, with ``require_role("public" |
"analyst" | "admin")`` as a FastAPI dependency; ``create_app`` refuses a route that declares
none, and a test calls every route as no one, an analyst and an admin. The Unix-socket app runs
without sign-in: the socket is the owner's alone (mode 0600).
"""

from __future__ import annotations

import hmac
import os
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import BaseRoute

from hubsight.errors import ConfigError, ForbiddenError, NotFoundError, SignInRequired
from hubsight.store.tokens import (
    DEFAULT_TOKEN_DAYS,
    MAX_TOKEN_DAYS,
    TokenEnded,
    TokenInfo,
    token_id,
)
from hubsight.store.users import (
    Account,
    Role,
    SessionExpired,
    SessionLimits,
    UserStore,
    epoch_iso,
)
from hubsight.web.auditing import audit_note, audited
from hubsight.web.rendering import render

SESSION_COOKIE = "hubsight_session"
CSRF_HEADER = "x-csrf-token"
LOCAL_ADMIN = Account("local", "admin")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_IDLE_ENV = "HUBSIGHT_SESSION_IDLE"
SESSION_MAX_ENV = "HUBSIGHT_SESSION_MAX"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])?$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# What the login page says after a guard sent a browser there from an ended session.
EXPIRED_MESSAGES = {
    "idle": "Your session expired after a period without activity. Sign in again.",
    "max": "Your session reached its maximum length. Sign in again.",
}


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


Access = Literal["public", "monitor", "analyst", "admin", "owner"]
ACCESS: tuple[Access, ...] = get_args(Access)


def _guard(access: Access) -> Callable[[Request], None]:
    def guard(request: Request) -> None:
        # An app built without ``auth`` (the owner's socket, a bare router in tests) has no sign-in.
        auth: ConsoleAuth | None = getattr(request.app.state, "auth", None)
        state = request.state
        if auth is None:
            state.account, state.csrf = LOCAL_ADMIN, ""
            return
        if access == "public" or (access == "monitor" and auth.open_metrics):
            return
        if access == "owner":
            raise ForbiddenError(
                "this is done only over the owner's local socket, never by a console account",
                hint="run the hubsight command on the server as the data directory's owner",
            )
        state.account, state.csrf = _caller(auth, request)
        require(request, access)

    guard.__doc__ = f"Let the request through only for the {access} role (a route dependency)."
    return guard


# One guard function per level, so a route's level can be read back from its dependencies.
_GUARDS: dict[Access, Callable[[Request], None]] = {access: _guard(access) for access in ACCESS}


def require_role(access: Access) -> Any:
    """The dependency declaring who may call a route; every route names one.

    ``"public"``: anyone (sign-in page, health); ``"analyst"``: any signed-in account;
    ``"admin"``: admins only; ``"monitor"``: as analyst, but anyone when the console listens
    on loopback only (``ConsoleAuth.open_metrics``, for Prometheus); ``"owner"``: only on the
    owner's Unix socket (no console account, admins neither). Use it where the route is defined::

        @router.delete("/api/v1/accounts/{name}", dependencies=[require_role("admin")])
    """
    return Depends(_GUARDS[access])


def app_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route of a route table, those of included routers too."""
    for route in routes:
        # Newer FastAPI keeps an included router whole in the table instead of copying its routes.
        included: APIRouter | None = getattr(route, "original_router", None)
        if included is not None:
            yield from app_routes(included.routes)
        else:
            yield route


def declared_access(route: APIRoute) -> list[Access]:
    """The access levels ``route`` declares with ``require_role`` (exactly one when correct)."""
    levels = {guard: access for access, guard in _GUARDS.items()}
    return [levels[d.call] for d in route.dependant.dependencies if d.call in levels]


def require(request: Request, access: Access) -> None:
    """Raise ``ForbiddenError`` unless the signed-in caller has ``access`` (inside a route)."""
    account = current_account(request)
    if access == "admin" and account.role != "admin":
        verb = "see" if request.method in _SAFE else "change"
        raise ForbiddenError(f"the {account.role} role cannot {verb} this", hint="ask an admin")


def _caller(auth: ConsoleAuth, request: Request) -> tuple[Account, str]:
    """The account of the token or session, and the session's CSRF token ('' for a token)."""
    bearer = request.headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        account = auth.users.token_account(bearer[7:].strip())
        if account is None:
            raise SignInRequired(
                "the API token is not valid", hint="create a new token in Settings"
            )
        if isinstance(account, TokenEnded):
            raise _token_ended(account)
        return account, ""
    session_id = request.cookies.get(SESSION_COOKIE)
    session = auth.users.session(session_id, auth.sessions) if session_id else None
    if isinstance(session, SessionExpired):
        raise SignInRequired("the session expired", hint="sign in again", expired=session.reason)
    if session is None:
        raise SignInRequired("sign in required", hint="sign in at /login or send an API token")
    sent = request.headers.get(CSRF_HEADER, "").encode()
    if request.method not in _SAFE and not hmac.compare_digest(sent, session.csrf.encode()):
        raise ForbiddenError("the CSRF token is missing or wrong", hint="reload the page")
    return session.account, session.csrf


def _token_ended(ended: TokenEnded) -> SignInRequired:
    token = ended.token
    when = epoch_iso(token.revoked_at if ended.reason == "revoked" else token.expires_at)
    return SignInRequired(
        f"the API token '{token.label}' ({token.id}) {ended.reason} at {when}",
        hint="issue a new one in Settings (API tokens), or on the server: hubsight users token "
        f"--name {token.name} --label {shlex.quote(token.label)} [--days N]",
    )


def signed_out(request: Request, exc: SignInRequired) -> Response:
    """To the login page for a page view, else 401; both end the cookie of an expired session."""
    path = request.url.path
    response: Response
    # Pages go to the login form; the API and /metrics (read by machines) answer 401.
    if request.method in _SAFE and not path.startswith("/api/") and path != "/metrics":
        expired = f"&expired={exc.expired}" if exc.expired else ""
        response = RedirectResponse(f"/login?next={quote(path)}{expired}", status_code=303)
    else:
        body: dict[str, Any] = {"error": exc.message, "hint": exc.hint or None}
        if exc.expired:
            body["expired"] = exc.expired
        response = JSONResponse(body, status_code=401)
    if exc.expired:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


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


@router.post(
    "/login", response_model=None, dependencies=[require_role("public"), audited("sign-in")]
)
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
    client = client_address(request)
    # The name as typed: a failed sign-in is recorded under it (the 401 makes it "failed").
    note = audit_note(request)
    note.actor = name
    name_key = f"name:{name.lower()}"
    keys = (f"ip:{client}", name_key)
    limit = auth.limiter
    wait = auth.users.login_wait(keys, limit.attempts, limit.window_s)
    if wait > 0:
        note.skip = True
        message = (
            "Too many failed sign-ins for this user or from this address; "
            f"try again in {wait_in_words(wait)}."
        )
        return _login_page(request, message, 429, wait, next_path)
    account = auth.users.check_password(name, password)
    if account is None:
        auth.users.login_failed(keys, limit.window_s)
        return _login_page(request, "Wrong user name or password.", 401, 0, next_path)
    # Only the name's count ends: one good password must not wipe an address's failed guesses
    # at other accounts.
    auth.users.login_succeeded(name_key)
    return signed_in(request, auth, account, _safe_next(next_path))


def set_cookie(
    response: Response, request: Request, auth: ConsoleAuth, name: str, value: str, path: str
) -> None:
    """Set a cookie no script reads and no other site sends; Secure as ``auth`` says."""
    secure = auth.secure_cookies
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" if secure is None else secure,
        path=path,
    )


def signed_in(request: Request, auth: ConsoleAuth, account: Account, target: str) -> Response:
    """A new session for ``account``: its cookie set on a redirect to ``target``."""
    session_id, _ = auth.users.open_session(account, auth.sessions)
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, auth, SESSION_COOKIE, session_id, "/")
    return response


def client_address(request: Request) -> str:
    """The caller's address, by which failed attempts are counted."""
    return request.client.host if request.client else "unknown"


def wait_in_words(seconds: float) -> str:
    """A wait of ``seconds`` as the refusal page says it ("42 seconds", "5 minutes")."""
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


@router.post(
    "/logout", response_model=None, dependencies=[require_role("analyst"), audited("sign-out")]
)
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
    days: int = Field(default=DEFAULT_TOKEN_DAYS, ge=1, le=MAX_TOKEN_DAYS)


def _users(request: Request) -> UserStore:
    auth = _auth(request)
    if auth is None:
        raise ConfigError(
            "accounts are managed on the web listener", hint="use `hubsight users` here"
        )
    return auth.users


@router.get("/api/v1/accounts", dependencies=[require_role("analyst")])
def list_accounts(request: Request) -> list[dict[str, str]]:
    """Every console account (names and roles)."""
    return [{"name": a.name, "role": a.role} for a in _users(request).accounts()]


@router.post(
    "/api/v1/accounts",
    status_code=201,
    dependencies=[require_role("admin"), audited("account.create")],
)
def create_account(request: Request, body: NewAccount) -> dict[str, str]:
    """Create an account (admins only)."""
    note = audit_note(request)
    note.target = body.name
    account = _users(request).create(body.name, body.password, body.role)
    note.changes = {"role": [None, account.role]}
    return {"name": account.name, "role": account.role}


@router.delete(
    "/api/v1/accounts/{name}",
    status_code=204,
    dependencies=[require_role("admin"), audited("account.delete")],
)
def delete_account(request: Request, name: str) -> None:
    """Delete an account with its sessions and tokens (admins only; never the last admin)."""
    users = _users(request)
    roles = {a.name: a.role for a in users.accounts()}
    if [n for n, role in roles.items() if role == "admin"] == [name]:
        raise ConfigError(
            f"'{name}' is the last admin", hint="create another admin before deleting this one"
        )
    users.delete(name)
    audit_note(request).changes = {"role": [roles.get(name), None]}


@router.post(
    "/api/v1/tokens",
    status_code=201,
    dependencies=[require_role("analyst"), audited("token.create")],
)
def create_token(request: Request, body: NewToken) -> dict[str, str | None]:
    """An API token for the caller, for ``days`` (default 90); its secret is in this answer only."""
    account = current_account(request)
    users = _users(request)
    secret = users.issue_token(account.name, body.label, days=body.days)
    issued = users.token(token_id(secret)).as_dict(users.now())
    note = audit_note(request)
    note.target = account.name
    note.details.update(label=body.label, id=issued["id"], expires=issued["expires_at"])
    return {"token": secret, **issued}


def visible_tokens(users: UserStore, account: Account) -> list[TokenInfo]:
    """The API tokens ``account`` may see and revoke: its own; an admin's: everyone's."""
    return users.tokens(None if account.role == "admin" else account.name)


@router.get("/api/v1/tokens", dependencies=[require_role("analyst")])
def list_tokens(request: Request) -> list[dict[str, str | None]]:
    """The caller's API tokens (an admin: every account's); never their secrets."""
    users = _users(request)
    now = users.now()
    return [t.as_dict(now) for t in visible_tokens(users, current_account(request))]


@router.delete(
    "/api/v1/tokens/{token_id}",
    status_code=204,
    dependencies=[require_role("analyst"), audited("token.revoke")],
)
def revoke_token(request: Request, token_id: str) -> None:
    """Revoke an API token at once: the caller's own, or anyone's for an admin (stays listed)."""
    users = _users(request)
    account = current_account(request)
    # Another account's token is "not found" to an analyst: ids of others' tokens do not leak.
    if account.role != "admin" and users.token(token_id).name != account.name:
        raise NotFoundError(
            f"no API token with id '{token_id}'", hint="your tokens are listed in Settings"
        )
    revoked = users.revoke_token(token_id)
    audit_note(request).details.update(label=revoked.label, account=revoked.name)
