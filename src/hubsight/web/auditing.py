"""What each changing route is recorded as in the audit trail, and the middleware recording it.

Every route that changes something (POST, PUT, PATCH, DELETE) declares what it is recorded as
with ``audited("source.update")`` after its ``require_role``; ``create_app`` refuses one that
declares none. ``AuditTrail`` records each call of such a route once its answer is known: who
(the signed-in account; on the owner's socket the CLI's ``cli:<user>``), how (session, token,
cli), from where (the client address: ``X-Forwarded-For`` only from trusted proxies, which
uvicorn resolves before this), the object (the route's path parameter), the outcome, and what
changed when the route says (``audit_note(request).changes = changes(before, after)``).
Requests refused before anyone is known (no session or token) are not recorded; a refused
role is (``denied``). Searches are recorded only when made with an API token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.routing import APIRoute

from hubsight.errors import HubsightError
from hubsight.store.audit import AuditLog, Outcome, cli_actor, is_cli_actor
from hubsight.web.limits import ASGIApp, Message, Receive, Scope, Send

_log = logging.getLogger(__name__)
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The header the CLI names its OS user with on the owner's socket (believed only there).
ACTOR_HEADER = "x-hubsight-actor"


@dataclass
class AuditNote:
    """What a route adds to its entry: the object, the actor of a sign-in, what changed."""

    target: str | None = None
    actor: str | None = None
    changes: dict[str, list[Any]] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # A sign-in refused by the rate limit: one entry per attempt would let anyone fill the disk.
    skip: bool = False


@dataclass(frozen=True)
class AuditAs:
    """The dependency naming what a route is recorded as (see ``audited``)."""

    action: str
    tokens_only: bool = False

    def __call__(self, request: Request) -> None:
        """Give the route a note to add its details to."""
        request.state.audit = AuditNote()


def audited(action: str, *, tokens_only: bool = False) -> Any:
    """The dependency declaring what calls of a route are recorded as in the audit trail::

    @router.delete("/x/{name}", dependencies=[require_role("admin"), audited("x.delete")])
    """
    return Depends(AuditAs(action, tokens_only))


def declared_audit(route: APIRoute) -> list[AuditAs]:
    """The audit actions ``route`` declares (exactly one for a route that changes something)."""
    return [d.call for d in route.dependant.dependencies if isinstance(d.call, AuditAs)]


def audit_note(request: Request) -> AuditNote:
    """The note of this request's audit entry (a route without ``audited`` writes to none)."""
    note: AuditNote | None = getattr(request.state, "audit", None)
    if note is None:
        note = request.state.audit = AuditNote()
    return note


def audit_log(request: Request) -> AuditLog:
    """The app's audit trail."""
    log: AuditLog = request.app.state.audit
    return log


class AuditTrail:
    """Records every call of a route declared ``audited`` once its status is known."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http" or scope["method"] not in CHANGING:
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            entry = _entry_of(scope, status)
            if entry is not None:
                log: AuditLog = scope["app"].state.audit
                try:
                    await anyio.to_thread.run_sync(lambda: log.record(**entry))
                except HubsightError as exc:
                    # The answer is sent already: the operator must hear of the gap instead.
                    _log.error(
                        "audit trail: %s %s by %s not recorded: %s (%s)",
                        entry["action"], entry["target"], entry["actor"], exc.message, exc.hint,
                    )  # fmt: skip


def _entry_of(scope: Scope, status: int) -> dict[str, Any] | None:
    route = scope.get("route")
    declared = declared_audit(route) if isinstance(route, APIRoute) else []
    if not declared:
        return None
    state = scope.get("state", {})
    note: AuditNote = state.get("audit") or AuditNote()
    if note.skip:
        return None
    headers = dict(scope["headers"])
    if scope["app"].state.auth is None:
        # The owner's socket: only the data directory's owner reaches it.
        claimed = headers.get(ACTOR_HEADER.encode(), b"").decode("latin-1")
        actor: str | None = claimed if is_cli_actor(claimed) else cli_actor()
        via = "cli"
    else:
        account = state.get("account")
        actor = note.actor or (account.name if account is not None else None)
        bearer = headers.get(b"authorization", b"").lower().startswith(b"bearer ")
        via = "token" if bearer else "session"
    if actor is None or (declared[0].tokens_only and via != "token"):
        return None
    outcome: Outcome = "ok" if status < 400 else "denied" if status == 403 else "failed"
    details: dict[str, Any] = {"status": status} | note.details
    if note.changes is not None and outcome == "ok":
        details["changes"] = note.changes
    params = scope.get("path_params") or {}
    client = scope.get("client")
    return {
        "actor": actor,
        "action": declared[0].action,
        "via": via,
        # None on the Unix socket (uvicorn gives no peer address there).
        "address": client[0] if client and client[0] else None,
        "target": note.target or next((str(v) for v in params.values()), None),
        "outcome": outcome,
        "details": details,
    }
