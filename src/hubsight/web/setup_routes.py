"""The first admin, created in the browser from the one-time link ``hubsight run`` printed.

``GET /setup?token=...`` shows the form while the link is good; ``POST /setup`` creates the
admin, spends the link and signs the browser in. There is no session yet to bind a CSRF token
to, so the page sets its own in a SameSite=Strict cookie scoped to ``/setup`` and the form sends
it back (double submit: another site can neither read nor send that cookie). A link that cannot
be used counts as a failed sign-in of the address (the sign-in limit, under a key of its own),
and the refusal page says how to get a new link. The link's secret never reaches the audit
trail (the entry names the new admin) or the log.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from hubsight.errors import ConfigError
from hubsight.store.setup_links import SetupLinks, SetupRefused
from hubsight.store.users import MIN_PASSWORD, epoch_iso
from hubsight.web.auditing import audit_note, audited
from hubsight.web.auth import (
    ConsoleAuth,
    client_address,
    require_role,
    set_cookie,
    signed_in,
    wait_in_words,
)
from hubsight.web.rendering import render

SETUP_CSRF_COOKIE = "hubsight_setup_csrf"
_NEW_LINK = (
    "While the console has no account, every start of `hubsight run` (or `make run`) prints a "
    "new link on its terminal. Or create the admin on the server: "
    "hubsight users create-admin --name NAME"
)
# The page holds the link's secret: no cache keeps it and no Referer carries it anywhere.
_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
router = APIRouter(include_in_schema=False)


def _refusal_text(refused: SetupRefused) -> tuple[str, str]:
    when = epoch_iso(refused.since)
    if refused.reason == "account":
        return (
            "The console has an account already, so setup links no longer work.",
            "Sign in, or ask an admin for an account "
            "(on the server: hubsight users create --name NAME).",
        )
    message = {
        "unknown": "This setup link is not valid: it may be incomplete or mistyped.",
        "used": f"This setup link was used already (at {when}); it works only once.",
        "expired": f"This setup link expired at {when}.",
        "replaced": f"A newer setup link replaced this one at {when}.",
    }[refused.reason]
    return message, _NEW_LINK


def _page(request: Request, template: str, context: dict[str, Any], status: int) -> Response:
    response = render(request, template, context, status)
    response.headers.update(_PRIVATE)
    return response


def _refused(request: Request, auth: ConsoleAuth, refused: SetupRefused) -> Response:
    """The refusal page (410: the link is gone for good), counted as a failed attempt."""
    auth.users.login_failed(_keys(request), auth.limiter.window_s)
    error, hint = _refusal_text(refused)
    context = {"error": error, "hint": hint, "back": ("/login", "sign-in")}
    return _page(request, "error.html", context, 410)


def _keys(request: Request) -> tuple[str]:
    return (f"setup:{client_address(request)}",)


def _too_many(request: Request, auth: ConsoleAuth) -> Response | None:
    """The 429 page while the address has used up its attempts, else None."""
    limit = auth.limiter
    wait = auth.users.login_wait(_keys(request), limit.attempts, limit.window_s)
    if wait <= 0:
        return None
    context = {
        "error": "Too many setup links that did not work from this address; "
        f"try again in {wait_in_words(wait)}.",
        "hint": _NEW_LINK,
    }
    response = _page(request, "error.html", context, 429)
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response


def _form(
    request: Request,
    auth: ConsoleAuth,
    token: str,
    *,
    csrf: str | None = None,
    name: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The form; sent back with an error, it keeps the CSRF token it came with."""
    csrf = csrf or secrets.token_urlsafe(32)
    context = {
        "token": token,
        "setup_csrf": csrf,
        "name": name,
        "error": error,
        "min_password": MIN_PASSWORD,
    }
    response = _page(request, "setup.html", context, status)
    set_cookie(response, request, auth, SETUP_CSRF_COOKIE, csrf, "/setup")
    return response


def _form_again(
    request: Request, auth: ConsoleAuth, token: str, csrf: str, name: str, error: str
) -> Response:
    """The form sent back with what was wrong; the link stays usable."""
    return _form(request, auth, token, csrf=csrf, name=name, error=error, status=400)


@router.get("/setup", response_model=None, dependencies=[require_role("public")])
def setup_page(request: Request, token: str = Query(default="", max_length=200)) -> Response:
    """The form that creates the first admin, while the link is good; else why not."""
    auth: ConsoleAuth | None = request.app.state.auth
    if auth is None:
        return RedirectResponse("/", status_code=303)
    blocked = _too_many(request, auth)
    if blocked is not None:
        return blocked
    refused = SetupLinks(auth.users).check(token)
    if refused is not None:
        return _refused(request, auth, refused)
    return _form(request, auth, token)


@router.post(
    "/setup",
    response_model=None,
    dependencies=[require_role("public"), audited("account.create")],
)
def create_first_admin(
    request: Request,
    token: str = Form(max_length=200),
    csrf: str = Form(max_length=200),
    name: str = Form(max_length=64),
    password: str = Form(max_length=1024),
    repeat: str = Form(max_length=1024),
) -> Response:
    """Create the first admin, spend the link and sign the browser in."""
    auth: ConsoleAuth | None = request.app.state.auth
    if auth is None:
        return RedirectResponse("/", status_code=303)
    # As a sign-in, the entry is under the name typed; every refusal below is counted against
    # the address, so no one fills the trail with them.
    note = audit_note(request)
    note.actor = note.target = name
    note.details["setup_link"] = True
    blocked = _too_many(request, auth)
    if blocked is not None:
        note.skip = True
        return blocked
    sent = request.cookies.get(SETUP_CSRF_COOKIE, "").encode()
    if not sent or not hmac.compare_digest(sent, csrf.encode()):
        auth.users.login_failed(_keys(request), auth.limiter.window_s)
        context = {
            "error": "The setup form's CSRF token is missing or wrong.",
            "hint": "Open the setup link again and send the form from that page.",
        }
        return _page(request, "error.html", context, 403)
    links = SetupLinks(auth.users)
    refused = links.check(token)
    if refused is not None:
        return _refused(request, auth, refused)
    if password != repeat:
        return _form_again(request, auth, token, csrf, name, "The two passphrases differ.")
    try:
        made = links.create_admin(token, name, password)
    except ConfigError as exc:
        error = f"{exc.message[:1].upper()}{exc.message[1:]}: {exc.hint}."
        return _form_again(request, auth, token, csrf, name, error)
    if isinstance(made, SetupRefused):
        return _refused(request, auth, made)
    note.changes = {"role": [None, made.role]}
    response = signed_in(request, auth, made, "/")
    response.delete_cookie(SETUP_CSRF_COOKIE, path="/setup")
    return response
