"""The console's server-rendered pages (Jinja2); their scripts call the REST API for actions.

Every page gets the caller's account and the session's CSRF token, which the page's script sends
back in ``X-CSRF-Token`` on each state-changing request.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from hubsight.detect.alerts import DISPOSITIONS, STATUSES, AlertFilter, AlertStore
from hubsight.detect.base import Severity
from hubsight.detect.investigations import InvestigationStore
from hubsight.detect.ruleset import rule_class, setting_hint
from hubsight.errors import HubsightError
from hubsight.parsing.event import Event
from hubsight.sources.config import DEFAULT_TOPIC
from hubsight.status import source_status
from hubsight.store.damage import DOCTOR_HINT
from hubsight.store.retention import describe_bytes, describe_case_days
from hubsight.store.tokens import DEFAULT_TOKEN_DAYS, ENDED_TOKENS_KEPT_DAYS, MAX_TOKEN_DAYS
from hubsight.web import coverage_pages, entity_pages, investigation_pages
from hubsight.web.auth import EXPIRED_MESSAGES, current_account, require_role, visible_tokens
from hubsight.web.detect_routes import alert_detail, list_rules, target_docs, user_timeline
from hubsight.web.evidence import evidence_summaries
from hubsight.web.page_state import detect_db, service_of, since_filter
from hubsight.web.pivots import alert_search
from hubsight.web.rendering import render
from hubsight.web.retention_routes import case_rows, retention_rows

_HERE = Path(__file__).parent
SEVERITIES = [s.value for s in Severity]
_LAST_CHOICES = ("15m", "1h", "24h", "7d", "30d")
router = APIRouter(include_in_schema=False)


def mount(app: FastAPI) -> None:
    """Add the pages and their static files to an app."""
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    app.include_router(router)
    app.include_router(investigation_pages.router)
    app.include_router(entity_pages.router)
    app.include_router(coverage_pages.router)


@router.get("/login", response_model=None, dependencies=[require_role("public")])
def login_page(request: Request, next: str = "/", expired: str = "") -> Response:
    """The sign-in form; it says so when the browser came from a session that expired."""
    if request.app.state.auth is None:
        return RedirectResponse("/", status_code=303)
    notice = EXPIRED_MESSAGES.get(expired)
    return render(request, "login.html", {"error": None, "notice": notice, "next": next})


def rule_log_sets(rule_id: str) -> list[str]:
    """The log sets a rule reads (none known for rules that are not built in)."""
    try:
        return sorted(str(s) for s in rule_class(rule_id).meta.log_sets)
    except HubsightError:
        return []


def _sources(request: Request) -> list[dict[str, Any]]:
    service = service_of(request)
    return [
        config.public() | {"health": source_status(service, config.name)}
        for config in service.catalog.all()
    ]


@router.get("/", response_class=HTMLResponse, dependencies=[require_role("analyst")])
def dashboard(request: Request) -> HTMLResponse:
    """Ingestion per source, open alerts by severity, authentication charts."""
    db = detect_db(request)
    open_alerts = (
        AlertStore(db).find(AlertFilter(status="open", notable=False, limit=1000)) if db else []
    )
    by_severity = Counter(str(a.severity) for a in open_alerts)
    return render(
        request,
        "dashboard.html",
        {
            "sources": _sources(request),
            "by_severity": [(s, by_severity.get(s, 0)) for s in SEVERITIES],
            "latest": [a.summary() for a in open_alerts[:8]],
        },
    )


@router.get("/sources", response_class=HTMLResponse, dependencies=[require_role("analyst")])
def sources_page(request: Request) -> HTMLResponse:
    """Data Collection: sources, their health, the add form and the Azure checklist."""
    return render(
        request,
        "sources.html",
        {
            "sources": _sources(request),
            "default_topic": DEFAULT_TOPIC,
            "retention": _retention(request),
            "damaged_parts": [part.summary() for part in service_of(request).damaged_parts],
            "doctor_hint": DOCTOR_HINT,
        },
    )


@router.get("/sources/{name}", response_class=HTMLResponse, dependencies=[require_role("analyst")])
def source_page(request: Request, name: str) -> HTMLResponse:
    """One event source: its state, events per minute over the last hour, lag per partition."""
    service = service_of(request)
    try:
        config = service.catalog.get(name)
    except HubsightError as exc:
        context = {"error": exc.message, "back": ("/sources", "Data Collection")}
        return render(request, "error.html", context, 404)
    health = source_status(service, name)
    return render(request, "source.html", {"s": config.public() | {"health": health}})


def _retention(request: Request) -> list[dict[str, Any]]:
    """Days kept, events and disk per log set, with the disk in words."""
    rows = retention_rows(service_of(request))
    return [row | {"disk": describe_bytes(row["bytes_on_disk"])} for row in rows]


def _cases(request: Request) -> dict[str, Any] | None:
    """Case retention with its counts and disk in words; None without detections."""
    if detect_db(request) is None:
        return None
    cases = case_rows(request)
    return cases | {
        "disk": describe_bytes(cases["bytes_on_disk"]),
        "kept": describe_case_days(cases["days"]),
    }


@router.get("/search", response_class=HTMLResponse, dependencies=[require_role("analyst")])
def search_page(
    request: Request,
    q: str = "",
    log_set: Annotated[list[str] | None, Query()] = None,
    start: Annotated[str, Query(alias="from")] = "",
    end: Annotated[str, Query(alias="to")] = "",
    last: str = "",
    run: bool = False,
) -> HTMLResponse:
    """Log Search; a pivot from another page fills in the query, log sets and time window."""
    service = service_of(request)
    rows = service.store.select(
        "SELECT log_set, log_name, count() AS n FROM events GROUP BY log_set, log_name "
        "ORDER BY log_name"
    )
    sets: Counter[str] = Counter()
    # A source's log name spans the log sets its records fall into: listed once, all counted.
    names: Counter[str] = Counter()
    for row in rows:
        sets[row["log_set"]] += int(row["n"])
        names[row["log_name"]] += int(row["n"])
    return render(
        request,
        "search.html",
        {
            "query": q,
            "picked_sets": set(log_set or ()),
            # Every log set and log name stored, with how many events each holds.
            "log_sets": sorted(sets.items()),
            "log_names": sorted(names.items()),
            "keys": sorted(f for f in Event.__struct_fields__ if f != "raw"),
            "window": {"from": start, "to": end} if start and end else None,
            "last": last if last in _LAST_CHOICES else "24h",
            "run": run,
        },
    )


@router.get("/alerts", response_class=HTMLResponse, dependencies=[require_role("analyst")])
def alerts_page(
    request: Request,
    status: str = "",
    severity: str = "",
    rule_id: str = "",
    user: str = "",
    assignee: str = "",
    since: str = "",
) -> HTMLResponse:
    """Alerts with filters."""
    db = detect_db(request)
    since, start = since_filter(since)
    filters = {
        "status": status,
        "severity": severity,
        "rule_id": rule_id,
        "user": user,
        "assignee": assignee,
        "since": since,
    }
    alerts: list[dict[str, Any]] = []
    error = None
    if db is None:
        error = "detections are not running in this process"
    else:
        flt = AlertFilter(
            status=status if status in STATUSES else None,
            severity=Severity(severity) if severity in SEVERITIES else None,
            rule_id=rule_id or None,
            user=user.lower() or None,
            assignee=assignee or None,
            notable=False,
            since=start,
            limit=500,
            partial=True,
        )
        alerts = [a.summary() for a in AlertStore(db).find(flt)]
    return render(
        request,
        "alerts.html",
        {
            "alerts": alerts,
            "filters": filters,
            "statuses": STATUSES,
            "dispositions": DISPOSITIONS,
            "severities": SEVERITIES,
            "accounts": investigation_pages.account_names(request),
            "filtered": any(filters.values()),
            "error": error,
        },
    )


@router.get(
    "/alerts/{alert_id}", response_class=HTMLResponse, dependencies=[require_role("analyst")]
)
def alert_page(request: Request, alert_id: str) -> HTMLResponse:
    """One alert: evidence, baseline, history and triage actions."""
    db = detect_db(request)
    if db is None:
        return render(request, "error.html", {"error": "detections are not running"}, 503)
    store = AlertStore(db)
    try:
        alert = alert_detail(store, store.get(alert_id))
    except HubsightError as exc:
        # The CLI's hint means nothing in a browser: point back to the list instead.
        context = {"error": exc.message, "back": ("/alerts", "the alerts")}
        return render(request, "error.html", context, 404)
    investigation = InvestigationStore(db).of_alert(alert_id)
    events = evidence_summaries(request, [e["event_id"] for e in alert["evidence"]])
    recent = user_timeline(alert["user"], db)["recent_signins"][-10:] if alert["user"] else []
    return render(
        request,
        "alert.html",
        {
            "alert": alert,
            "statuses": STATUSES,
            "dispositions": DISPOSITIONS,
            "recent": recent,
            "investigation": investigation.summary() if investigation else None,
            "events": events,
            "search": alert_search(alert),
            "rule_log_sets": rule_log_sets(alert["rule_id"]),
            "accounts": investigation_pages.account_names(request),
        },
    )


@router.get("/settings", response_class=HTMLResponse, dependencies=[require_role("analyst")])
def settings_page(request: Request) -> HTMLResponse:
    """Rules (enable, thresholds), console accounts and API tokens."""
    db = detect_db(request)
    auth = request.app.state.auth
    rules = list_rules(request, db) if db else []
    for rule in rules:
        rule["hints"] = {k: setting_hint(p) for k, p in rule["settings_schema"].items()}
    accounts = auth.users.accounts() if auth is not None else []
    me = current_account(request)
    tokens = [t.as_dict(auth.users.now()) for t in visible_tokens(auth.users, me)] if auth else []
    return render(
        request,
        "settings.html",
        {
            "rules": rules,
            "accounts": accounts,
            "tokens": tokens,
            "default_token_days": DEFAULT_TOKEN_DAYS,
            "max_token_days": MAX_TOKEN_DAYS,
            "ended_tokens_kept_days": ENDED_TOKENS_KEPT_DAYS,
            "me": me,
            "retention": _retention(request),
            "cases": _cases(request),
        }
        | _targets(request),
    )


def _targets(request: Request) -> dict[str, Any]:
    """Notification targets (secrets only as set/not set), or why they cannot be read."""
    db = detect_db(request)
    if db is None:
        return {"targets": [], "targets_error": "detections are not running in this process"}
    try:
        return {"targets": target_docs(request, db), "targets_error": None}
    except HubsightError as exc:
        return {"targets": [], "targets_error": f"{exc.message} ({exc.hint})"}
