"""The REST API (FastAPI): event sources, their health and connection tests.

Secrets are write-only: requests may carry a connection string or password, responses never do,
and validation errors never echo what was sent.
"""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from hubsight import __version__
from hubsight.errors import ConfigError, HubsightError, SecretRequired, SignInRequired
from hubsight.probe import probe_source
from hubsight.service import Service
from hubsight.sources.config import SourceConfig, make_source
from hubsight.status import source_status
from hubsight.store.audit import AuditLog, changes
from hubsight.store.users import UserStore
from hubsight.web import (
    audit_routes,
    backup_routes,
    detect_routes,
    hunt_routes,
    investigation_routes,
    monitor_routes,
    pages,
    retention_routes,
    search_routes,
    setup_routes,
)
from hubsight.web import auth as console_auth
from hubsight.web.auditing import CHANGING, AuditTrail, audit_note, audited, declared_audit
from hubsight.web.auth import (
    ConsoleAuth,
    app_routes,
    declared_access,
    require,
    require_role,
    signed_out,
)
from hubsight.web.limits import BodyLimit
from hubsight.web.rendering import render
from hubsight.web.responses import error_kind, error_response

router = APIRouter(prefix="/api/v1")
_SECRETS = ("connection_string", "password")

_SOURCE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SourceConfig"}}},
    }
}

_PATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "JSON merge patch of a SourceConfig"}
            }
        },
    }
}


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _public(service: Service, config: SourceConfig) -> dict[str, Any]:
    return config.public() | {"health": source_status(service, config.name)}


@router.get("/event-sources", dependencies=[require_role("analyst")])
def list_sources(request: Request) -> list[dict[str, Any]]:
    """Every event source with its health; secrets are shown only as '(set)'."""
    service = _service(request)
    return [_public(service, config) for config in service.catalog.all()]


@router.post(
    "/event-sources",
    status_code=201,
    openapi_extra=_SOURCE_BODY,
    dependencies=[require_role("admin"), audited("source.create")],
)
async def create_source(request: Request) -> dict[str, Any]:
    """Add an event source; the collector starts on it within a second."""
    service = _service(request)
    config = make_source(await _json_body(request))
    service.catalog.add(config)
    _note_change(request, None, config)
    return _public(service, config)


@router.get("/event-sources/{name}", dependencies=[require_role("analyst")])
def get_source(request: Request, name: str) -> dict[str, Any]:
    """One event source."""
    service = _service(request)
    return _public(service, service.catalog.get(name))


@router.put(
    "/event-sources/{name}",
    openapi_extra=_SOURCE_BODY,
    dependencies=[require_role("admin"), audited("source.update")],
)
async def replace_source(request: Request, name: str, dry_run: bool = False) -> dict[str, Any]:
    """Replace a source's settings; a secret left out or empty keeps its stored value.

    With ``dry_run`` the settings are only validated. A running collector restarts with the
    new settings within a second.
    """
    service = _service(request)
    current = service.catalog.get(name)
    config = edited(current, await _json_body(request))
    if not dry_run:
        service.catalog.replace(config)
        _note_change(request, current, config)
    return _public(service, config)


@router.patch(
    "/event-sources/{name}",
    openapi_extra=_PATCH_BODY,
    dependencies=[require_role("admin"), audited("source.update")],
)
async def patch_source(request: Request, name: str, dry_run: bool = False) -> dict[str, Any]:
    """Change some settings (a JSON merge patch: null removes a key); secrets as with PUT."""
    service = _service(request)
    current = service.catalog.get(name)
    patch = await _json_body(request)
    base = current.public()
    # "(set)" stands in for a stored secret; leaving it out makes ``edited`` keep the secret.
    base["profile"] = {k: v for k, v in base["profile"].items() if k not in _SECRETS}
    profile = patch.get("profile")
    if isinstance(profile, dict) and profile.get("kind", current.profile.kind) != (
        current.profile.kind
    ):
        base.pop("profile")
    config = edited(current, merge_patch(base, patch))
    if not dry_run:
        service.catalog.replace(config)
        _note_change(request, current, config)
    return _public(service, config)


def _note_change(request: Request, before: SourceConfig | None, after: SourceConfig | None) -> None:
    """What a source change did, for the audit trail: public fields, and which secrets changed."""
    found = changes(before.public() if before else {}, after.public() if after else {})
    if before is not None and after is not None:
        for secret in _SECRETS:
            old, new = getattr(before.profile, secret, None), getattr(after.profile, secret, None)
            if old is not None and new is not None and old != new:
                found[f"profile.{secret}"] = ["(set)", "(changed)"]
    note = audit_note(request)
    note.changes = found
    either = after or before
    note.target = either.name if either is not None else None


def edited(current: SourceConfig, body: dict[str, Any]) -> SourceConfig:
    """``current`` as ``body`` describes it; a secret left out or empty keeps its stored value,
    unless the address changes (``SecretRequired``)."""
    if body.get("name", current.name) != current.name:
        raise ConfigError("a source cannot be renamed", hint="add a new source instead")
    body["name"] = current.name
    profile = body.get("profile")
    kept = []
    if isinstance(profile, dict) and profile.get("kind", current.profile.kind) == (
        current.profile.kind
    ):
        for secret in _SECRETS:
            stored = getattr(current.profile, secret, None)
            if not profile.get(secret) and stored is not None:
                profile[secret] = stored.get_secret_value()
                kept.append(secret)
    config = make_source(body)
    # A stored secret never follows a changed address: whoever may edit the address could
    # otherwise have it sent to a broker of their choosing.
    if kept and config.profile.bootstrap != current.profile.bootstrap:
        raise SecretRequired(
            f"the address changed to {config.profile.bootstrap}: enter {' and '.join(kept)} again",
            hint="a stored secret is never sent to a new address; type it with the change",
        )
    return config


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``target`` with ``patch`` applied as an RFC 7396 JSON merge patch."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


@router.delete(
    "/event-sources/{name}",
    status_code=204,
    dependencies=[require_role("admin"), audited("source.delete")],
)
def delete_source(request: Request, name: str) -> None:
    """Remove a source; its stored events stay."""
    catalog = _service(request).catalog
    current = catalog.get(name)
    catalog.remove(name)
    _note_change(request, current, None)


@router.get("/event-sources/{name}/health", dependencies=[require_role("analyst")])
def source_health(request: Request, name: str) -> dict[str, Any]:
    """State, last error and hint, events per minute, last event time, lag per partition."""
    service = _service(request)
    service.catalog.get(name)
    return source_status(service, name)


@router.post(
    "/event-sources/test",
    response_model=None,
    openapi_extra=_SOURCE_BODY,
    dependencies=[require_role("admin"), audited("source.test")],
)
async def test_new_source(request: Request) -> dict[str, Any]:
    """Walk the connection of a source that is not added yet (admins only); nothing is saved."""
    # Testing settings that are not saved makes this server connect wherever they point.
    config = make_source(await _json_body(request))
    audit_note(request).target = config.name
    return await _probe(config)


@router.post(
    "/event-sources/{name}/test",
    response_model=None,
    dependencies=[require_role("analyst"), audited("source.test")],
)
async def test_source(request: Request, name: str) -> dict[str, Any]:
    """Walk the connection step by step: DNS, TCP, TLS, SASL, topic, first message.

    With a body (as for PUT, admins only) the edited settings are tested without saving them.
    """
    config = _service(request).catalog.get(name)
    if await request.body():
        # As for a source not added yet: only an admin may make this server connect elsewhere.
        require(request, "admin")
        config = edited(config, await _json_body(request))
    return await _probe(config)


async def _probe(config: SourceConfig) -> dict[str, Any]:
    steps = await anyio.to_thread.run_sync(probe_source, config)
    return {
        "name": config.name,
        "ok": all(s.ok for s in steps),
        "steps": [s.as_dict() for s in steps],
    }


@router.get("/status", dependencies=[require_role("analyst")])
def status(request: Request) -> dict[str, Any]:
    """Health of every source, and the event store's parts ClickHouse set aside as damaged."""
    service = _service(request)
    return {
        "sources": [source_status(service, c.name) for c in service.catalog.all()],
        "damaged_parts": [part.as_json() for part in service.damaged_parts],
    }


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        raise ConfigError(
            "the request body is not JSON, or nests too deeply", hint="send one JSON object"
        ) from None
    if not isinstance(body, dict):
        raise ConfigError("the request body must be a JSON object")
    return body


def create_app(
    service: Service, auth: ConsoleAuth | None = None, *, users: UserStore | None = None
) -> FastAPI:
    """The API and console over a running service; ``auth=None`` only for the owner's socket.

    ``users`` gives the socket, which signs no one in, the accounts (saved queries' owners).
    """
    # No Swagger/ReDoc pages: they load their scripts from a CDN, and the console must work in
    # an air-gapped SOC. The OpenAPI description itself is served at /openapi.json.
    app = FastAPI(
        title="hubsight", version=__version__, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.add_middleware(BodyLimit)
    # Outside the body limit, so a refused body is recorded with the status the caller saw.
    app.add_middleware(AuditTrail)
    app.state.auth = auth
    app.state.users = auth.users if auth is not None else users
    app.state.audit = AuditLog(service.data_dir)
    app.state.service = service
    app.state.store = service.store
    app.state.data_dir = service.data_dir
    app.state.started = time.time()
    app.include_router(router)
    app.include_router(search_routes.router)
    app.include_router(detect_routes.router)
    app.include_router(investigation_routes.router)
    app.include_router(hunt_routes.router)
    app.include_router(console_auth.router)
    app.include_router(monitor_routes.router)
    app.include_router(retention_routes.router)
    app.include_router(backup_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(setup_routes.router)
    pages.mount(app)
    _add_schemas(app)

    @app.get("/health", dependencies=[require_role("public")])
    def health() -> dict[str, Any]:
        """Liveness: the process runs."""
        return {"status": "ok", "version": __version__}

    @app.get("/openapi.json", include_in_schema=False, dependencies=[require_role("analyst")])
    def openapi() -> dict[str, Any]:
        """The OpenAPI description of this API."""
        return app.openapi()

    @app.exception_handler(HubsightError)
    async def hubsight_error(request: Request, exc: HubsightError) -> Response:
        if isinstance(exc, SignInRequired):
            return signed_out(request, exc)
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # A browser that follows a wrong link gets a page of the console; scripts get
        # Starlette's own refusals (unknown path, unreadable body) in the API's error shape.
        if exc.status_code == 404 and not request.url.path.startswith("/api/"):
            context = {
                "error": f"There is no page at {request.url.path}.",
                "back": ("/", "the dashboard"),
            }
            return render(request, "error.html", context, 404)
        body = {"error": str(exc.detail), "hint": "see /openapi.json for the API's requests"}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input, which may hold a connection string.
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        if _form_sent_otherwise(request):
            # Its fields were sent, as JSON: "name: Field required" would be untrue.
            body = {
                "error": "this request takes a form (application/x-www-form-urlencoded), "
                "not the body sent",
                "hint": "send the fields as a form; scripts use an API token instead of signing in",
                "problems": problems,
            }
            return JSONResponse(body, status_code=422, headers=error_kind(usage=True))
        named = "; ".join(_problem_text(p) for p in problems)
        body = {
            "error": "invalid request",
            "hint": f"{named} (/openapi.json lists each request's parameters)",
            "problems": problems,
        }
        return JSONResponse(body, status_code=422, headers=error_kind(usage=True))

    check_routes(app)
    return app


def _problem_text(problem: dict[str, Any]) -> str:
    """``limit (query): Input should be ...``: the parameter, where it was sent, what is wrong."""
    where, *path = [str(part) for part in problem["loc"]] or ["request"]
    name = ".".join(path) or where
    return f"{name} ({where}): {problem['msg']}" if path else f"{name}: {problem['msg']}"


def _form_sent_otherwise(request: Request) -> bool:
    """The route reads a form (sign-in, first admin) and the body is not one."""
    route = request.scope.get("route")
    field = route.body_field if isinstance(route, APIRoute) else None
    if field is None or not isinstance(field.field_info, params.Form):
        return False
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind not in {"application/x-www-form-urlencoded", "multipart/form-data"}


def check_routes(app: FastAPI) -> None:
    """Every route must say who may call it, and one that changes something what it is recorded
    as in the audit trail: a route without ``require_role`` (or ``audited``) is a bug."""
    for route in app_routes(app.routes):
        if not isinstance(route, APIRoute):
            continue
        where = f"route {sorted(route.methods or ())} {route.path}"
        if len(declared_access(route)) != 1:
            raise ConfigError(
                f"{where} declares {len(declared_access(route))} roles",
                hint='add dependencies=[require_role("public" | "analyst" | "admin")] to it',
            )
        if CHANGING & set(route.methods or ()) and len(declared_audit(route)) != 1:
            raise ConfigError(
                f"{where} changes something but declares {len(declared_audit(route))} audit "
                "actions",
                hint='add audited("thing.verb") to its dependencies, after require_role',
            )


def _add_schemas(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            source_schema = SourceConfig.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components.update(source_schema.pop("$defs", {}))
            components["SourceConfig"] = source_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
