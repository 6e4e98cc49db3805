"""REST endpoints of Log Search: searches, event context, export, saved and recent queries,
raw paths.

Quick searches answer in the POST; one that runs longer than ``wait_ms`` returns its id to poll
with GET. A query error is a 400 with the line, the column and a caret excerpt, never a 500.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from hubsight.errors import HubsightError, NotFoundError
from hubsight.query.context import context
from hubsight.query.export import export
from hubsight.query.parser import parse
from hubsight.query.saved import (
    Owners,
    SavedQuery,
    SavedScope,
    delete_saved,
    get_saved,
    list_saved,
    may_change,
    save,
)
from hubsight.query.search import SearchLimits, SearchRequest, SearchResult, search, window_of
from hubsight.store.audit import changes
from hubsight.store.base import EventStore
from hubsight.store.users import HISTORY_KEPT, Account, UserStore
from hubsight.web.auditing import audit_note, audited
from hubsight.web.auth import ConsoleAuth, current_account, require_role
from hubsight.web.raw_paths import RawPathCache
from hubsight.web.responses import error_response

router = APIRouter(prefix="/api/v1")
_KEPT_JOBS = 200


class SearchBody(BaseModel):
    """A search: the LEQL query and its scope."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    query: str
    last: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    timezone: str = "UTC"
    log_sets: list[str] = Field(default_factory=list)
    log_names: list[str] = Field(default_factory=list)
    limit: int | None = Field(default=None, ge=1)
    cursor: str | None = None
    wait_ms: int = Field(default=2000, ge=0, le=60_000)
    # Unknown keys fail the search instead of reading the raw record with a warning.
    strict: bool = False
    # Put it first in the caller's query history (the console's Search button sets it).
    history: bool = False

    def request(self) -> SearchRequest:
        """As the executor's request."""
        return SearchRequest(
            query=self.query,
            last=self.last,
            start=self.from_,
            end=self.to,
            timezone=self.timezone,
            log_sets=tuple(self.log_sets),
            log_names=tuple(self.log_names),
            limit=self.limit,
            cursor=self.cursor,
            strict=self.strict,
        )


class SavedBody(BaseModel):
    """A saved query as sent by a client."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    query: str
    log_sets: list[str] = Field(default_factory=list)
    log_names: list[str] = Field(default_factory=list)
    last: str | None = None
    # Others see and run a shared query, never change it; left out: as it is (new: not shared).
    shared: bool | None = None
    # An admin gives the query to another account; left out: the owner stays.
    owner: str | None = Field(default=None, min_length=1, max_length=64)


class SearchJobs:
    """Searches that outlived their request; one worker so the engine sees one search at a time."""

    def __init__(self, observe: Callable[[float], object] | None = None) -> None:
        # Called with each finished search's duration in seconds (the search latency metric).
        self._observe = observe
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")
        self._jobs: OrderedDict[str, Future[SearchResult]] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, store: EventStore, request: SearchRequest, limits: SearchLimits) -> str:
        """Start a search; its id."""
        job_id = uuid.uuid4().hex
        future = self._pool.submit(self._timed, store, request, limits)
        with self._lock:
            self._jobs[job_id] = future
            while len(self._jobs) > _KEPT_JOBS:
                self._jobs.popitem(last=False)
        return job_id

    def _timed(
        self, store: EventStore, request: SearchRequest, limits: SearchLimits
    ) -> SearchResult:
        started = time.perf_counter()
        try:
            return search(store, request, limits)
        finally:
            if self._observe is not None:
                self._observe(time.perf_counter() - started)

    def get(self, job_id: str) -> Future[SearchResult]:
        """The job's future; ``NotFoundError`` once it is forgotten or never existed."""
        with self._lock:
            future = self._jobs.get(job_id)
        if future is None:
            raise NotFoundError(f"no search with id '{job_id}'", hint="run the search again")
        return future


def get_store(request: Request) -> EventStore:
    """The application's event store."""
    store: EventStore = request.app.state.store
    return store


def get_jobs(request: Request) -> SearchJobs:
    """The application's search jobs, created on first use."""
    state = request.app.state
    if getattr(state, "search_jobs", None) is None:
        service = getattr(state, "service", None)
        metrics = getattr(service, "metrics", None)
        state.search_jobs = SearchJobs(metrics.search_seconds.observe if metrics else None)
    jobs: SearchJobs = state.search_jobs
    return jobs


def get_limits(request: Request) -> SearchLimits:
    """Search limits from ``app.state.search_limits``, or the defaults."""
    limits = getattr(request.app.state, "search_limits", None)
    return limits if isinstance(limits, SearchLimits) else SearchLimits()


Store = Annotated[EventStore, Depends(get_store)]
Jobs = Annotated[SearchJobs, Depends(get_jobs)]
Limits = Annotated[SearchLimits, Depends(get_limits)]


def _job_body(job_id: str, future: Future[SearchResult]) -> JSONResponse:
    if not future.done():
        return JSONResponse({"id": job_id, "status": "running"}, status_code=202)
    exc = future.exception()
    if isinstance(exc, HubsightError):
        response = error_response(exc)
        return response
    if exc is not None:
        raise exc
    return JSONResponse({"id": job_id, "status": "done", **future.result().to_json()})


# What the trail keeps of a query: enough to know what was looked for.
_QUERY_KEPT = 2000


def note_search(request: Request, body: SearchBody, **details: Any) -> None:
    """What a search or export asked, for the audit trail."""
    window = {"last": body.last, "from": body.from_, "to": body.to}
    audit_note(request).details |= {
        "query": body.query[:_QUERY_KEPT],
        **{k: v for k, v in window.items() if v},
        **details,
    }


@router.post("/search", dependencies=[require_role("analyst"), audited("search", tokens_only=True)])
def run_search(
    request: Request, body: SearchBody, store: Store, jobs: Jobs, limits: Limits
) -> JSONResponse:
    """Run a search; the answer if it finishes within ``wait_ms``, else its id (202).

    With ``history``, a search that parses is put first in the caller's query history.
    """
    note_search(request, body)
    if body.history and not body.cursor:
        remember(request, body)
    job_id = jobs.submit(store, body.request(), limits)
    future = jobs.get(job_id)
    try:
        future.result(timeout=body.wait_ms / 1000)
    except TimeoutError:
        pass
    except HubsightError as exc:
        return error_response(exc)
    return _job_body(job_id, future)


def _accounts(request: Request) -> UserStore | None:
    auth: ConsoleAuth | None = getattr(request.app.state, "auth", None)
    return auth.users if auth is not None else None


def _owners(request: Request) -> Owners | None:
    """Who may own saved queries now; None where no accounts are known (an app without them)."""
    # The owner's socket signs no one in, but ``hubsight run`` gives it the accounts' store it
    # has open: opening one per request cost a password hash (its decoy) and a write lock.
    users: UserStore | None = _accounts(request) or getattr(request.app.state, "users", None)
    if users is None:
        return None
    return Owners(frozenset(a.name for a in users.accounts()), users.deleted_names())


def remember(request: Request, body: SearchBody) -> None:
    """Put a search that parses, with its scope, first in the calling account's history.

    Only console accounts have one: the owner's socket signs no one in.
    """
    users = _accounts(request)
    if users is None:
        return
    try:
        parse(body.query)
        window_of(body.request())
    except HubsightError:
        return  # the search itself answers with the error
    scope = body.model_dump(
        by_alias=True,
        exclude_none=True,
        include={"query", "last", "from_", "to", "log_sets", "log_names"},
    )
    users.remember_search(current_account(request).name, scope)


@router.get("/query-history", dependencies=[require_role("analyst")])
def query_history(
    request: Request, limit: Annotated[int, Query(ge=1, le=HISTORY_KEPT)] = 20
) -> list[dict[str, Any]]:
    """The caller's latest searches run with ``history``, newest first (none on the socket)."""
    users = _accounts(request)
    return users.search_history(current_account(request).name, limit) if users else []


@router.delete(
    "/query-history",
    status_code=204,
    dependencies=[require_role("analyst"), audited("query-history.clear")],
)
def clear_query_history(request: Request) -> None:
    """Forget the caller's query history."""
    users = _accounts(request)
    if users is not None:
        users.forget_searches(current_account(request).name)


@router.get("/raw-paths", dependencies=[require_role("analyst")])
def raw_paths(
    request: Request,
    store: Store,
    log_set: Annotated[list[str] | None, Query()] = None,
    log_name: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    """Paths into the raw records of recent events in these log sets and names, to complete."""
    state = request.app.state
    if getattr(state, "raw_paths", None) is None:
        state.raw_paths = RawPathCache()
    cache: RawPathCache = state.raw_paths
    paths, sampled = cache.paths(store, log_set or [], log_name or [])
    return {"paths": paths, "sampled_events": sampled}


@router.get("/search/{job_id}", dependencies=[require_role("analyst")])
def poll_search(job_id: str, jobs: Jobs) -> JSONResponse:
    """A search's status, and its result once done."""
    try:
        return _job_body(job_id, jobs.get(job_id))
    except HubsightError as exc:
        return error_response(exc)


@router.post(
    "/search/export",
    response_model=None,
    dependencies=[require_role("analyst"), audited("export")],
)
def export_search(
    request: Request,
    body: SearchBody,
    store: Store,
    limits: Limits,
    format: Literal["csv", "json"] = "json",
) -> StreamingResponse | JSONResponse:
    """The whole result of a search, streamed as CSV or JSON."""
    note_search(request, body, format=format)
    chunks = export(store, body.request(), format, limits)
    try:
        first = next(chunks)
    except HubsightError as exc:
        return error_response(exc)

    def stream() -> Any:
        yield first
        yield from chunks

    media = "text/csv" if format == "csv" else "application/json"
    headers = {"Content-Disposition": f'attachment; filename="search.{format}"'}
    return StreamingResponse(stream(), media_type=media, headers=headers)


@router.get("/events/{event_id}/context", dependencies=[require_role("analyst")])
def event_context(event_id: str, store: Store, before: int = 10, after: int = 10) -> JSONResponse:
    """The events before and after one event in its log."""
    try:
        return JSONResponse(
            context(store, event_id, before=min(before, 500), after=min(after, 500))
        )
    except HubsightError as exc:
        return error_response(exc)


def _saved_json(saved: SavedQuery, account: Account) -> dict[str, Any]:
    return {
        "id": saved.id,
        "name": saved.name,
        "query": saved.query,
        "log_sets": saved.scope.log_sets,
        "log_names": saved.scope.log_names,
        "last": saved.scope.last,
        "created_at": saved.created_at,
        "updated_at": saved.updated_at,
        "owner": saved.owner or None,
        "owner_deleted": saved.owner_deleted,
        "shared": saved.shared,
        # Whether the caller may change or delete it (the console offers Delete only then).
        "can_change": may_change(saved, account),
    }


def _store_saved(
    request: Request, store: EventStore, body: SavedBody, query_id: str | None
) -> JSONResponse:
    account = current_account(request)
    scope = SavedScope(log_sets=body.log_sets, log_names=body.log_names, last=body.last)
    try:
        owners = _owners(request)
        before = (
            _saved_json(get_saved(store, query_id, account, owners), account) if query_id else {}
        )
        saved = save(
            store,
            account,
            name=body.name,
            query=body.query,
            scope=scope,
            shared=body.shared,
            query_id=query_id,
            owner=body.owner,
            owners=owners,
        )
    except HubsightError as exc:
        return error_response(exc)
    after = _saved_json(saved, account)
    note = audit_note(request)
    note.target = saved.id
    note.changes = changes(
        {k: before.get(k) for k in _SAVED_FIELDS}, {k: after[k] for k in _SAVED_FIELDS}
    )
    return JSONResponse(after, status_code=200 if query_id else 201)


# What the trail records of a saved query's change (not its times or the caller's rights).
_SAVED_FIELDS = (
    "name",
    "query",
    "log_sets",
    "log_names",
    "last",
    "shared",
    "owner",
    "owner_deleted",
)


@router.get("/saved-queries", dependencies=[require_role("analyst")])
def saved_queries(request: Request, store: Store) -> list[dict[str, Any]]:
    """Every saved query the caller may see: their own, shared ones (admins: all, also those
    of deleted accounts, marked ``owner_deleted``)."""
    account = current_account(request)
    return [_saved_json(saved, account) for saved in list_saved(store, account, _owners(request))]


@router.post(
    "/saved-queries",
    status_code=201,
    dependencies=[require_role("analyst"), audited("saved-query.create")],
)
def create_saved(request: Request, body: SavedBody, store: Store) -> JSONResponse:
    """Save a query (it must parse), owned by the caller."""
    return _store_saved(request, store, body, None)


@router.get("/saved-queries/{query_id}", dependencies=[require_role("analyst")])
def read_saved(request: Request, query_id: str, store: Store) -> JSONResponse:
    """One saved query (404 for one the caller may not see)."""
    account = current_account(request)
    try:
        found = get_saved(store, query_id, account, _owners(request))
        return JSONResponse(_saved_json(found, account))
    except HubsightError as exc:
        return error_response(exc)


@router.put(
    "/saved-queries/{query_id}",
    dependencies=[require_role("analyst"), audited("saved-query.update")],
)
def update_saved(request: Request, query_id: str, body: SavedBody, store: Store) -> JSONResponse:
    """Replace a saved query (its owner or an admin; 403 for a query shared by another).

    An admin reassigns it with ``owner``; one whose owner's account was deleted takes that.
    """
    return _store_saved(request, store, body, query_id)


@router.delete(
    "/saved-queries/{query_id}",
    status_code=204,
    response_model=None,
    dependencies=[require_role("analyst"), audited("saved-query.delete")],
)
def remove_saved(request: Request, query_id: str, store: Store) -> JSONResponse | None:
    """Delete a saved query (its owner or an admin; 403 for a query shared by another)."""
    account = current_account(request)
    try:
        owners = _owners(request)
        before = _saved_json(get_saved(store, query_id, account, owners), account)
        delete_saved(store, query_id, account, owners)
    except HubsightError as exc:
        return error_response(exc)
    audit_note(request).changes = changes({k: before[k] for k in _SAVED_FIELDS}, {})
    return None
