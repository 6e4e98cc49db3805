"""Entity pages: every user seen, one user, one address, one Azure resource.

Each shows what the stored events say about it (one or two bounded reads, ``query.entities``)
beside what detection made of it (alerts, notables, baseline), with links onwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hubsight.detect.alerts import AlertFilter, AlertStore
from hubsight.detect.baseline import from_epoch
from hubsight.detect.db import DetectDB
from hubsight.detect.investigations import InvestigationFilter, InvestigationStore
from hubsight.detect.settings import DetectConfig
from hubsight.detect.state import read_baseline
from hubsight.errors import HubsightError
from hubsight.query.entities import address_profile, resource_activity, user_profile, users_seen
from hubsight.web.auth import require_role
from hubsight.web.detect_routes import user_timeline
from hubsight.web.page_state import detect_db, service_of
from hubsight.web.rendering import render
from hubsight.web.worldmap import cited_countries, on_map, world_svg

router = APIRouter(include_in_schema=False)
_SORTS = ("risk", "events", "name")
# How each kind a baseline learns (detect.baseline.KINDS) reads on the user page.
BASELINE_LABELS = {
    "country": "Countries",
    "ip": "Addresses",
    "asn": "Networks (organization, else the address's /16)",
    "device": "Devices",
    "app": "Applications",
    "identity": "Identities that read secrets",
    "signin": "Sign-ins",
    "pim_role": "Privileged roles activated (PIM)",
}
# A kind with no label (saved by another release): its values, never its key.
OTHER_KIND = "Other learnt values"


def baseline_by_label(kinds: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """A baseline's values per readable label (``OTHER_KIND`` for a kind without one)."""
    shown: dict[str, list[str]] = {}
    for kind, values in kinds.items():
        shown.setdefault(BASELINE_LABELS.get(kind, OTHER_KIND), []).extend(values)
    return {label: sorted(values) for label, values in shown.items()}


def _since(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=max(1, min(days, 3650)))


def open_counts(db: DetectDB | None) -> dict[str, tuple[int, int]]:
    """Per user, the alerts and notables not closed: their risk."""
    if db is None:
        return {}
    rows = db.rows(
        "SELECT user, sum(notable = 0) AS alerts, sum(notable) AS notables FROM alerts "
        "WHERE status != 'closed' AND user IS NOT NULL GROUP BY user"
    )
    return {r["user"]: (int(r["alerts"]), int(r["notables"])) for r in rows}


@router.get("/users", response_class=HTMLResponse, dependencies=[require_role("analyst")])
def users_page(request: Request, q: str = "", sort: str = "risk", days: int = 30) -> HTMLResponse:
    """Every user the logs name, with events, addresses, failures and open alerts/notables."""
    sort = sort if sort in _SORTS else "risk"
    risk = open_counts(detect_db(request))
    seen = {row["name"]: row for row in users_seen(service_of(request).store, _since(days), q)}
    # A user with open alerts is listed even when their events are older than the period.
    for name in risk:
        if name not in seen and q.strip().lower() in name:
            seen[name] = dict(name=name, events=0, last_seen=None, addresses=0, failures=0)
    users = []
    for name, row in seen.items():
        alerts, notables = risk.get(name, (0, 0))
        users.append(row | {"alerts": alerts, "notables": notables, "risk": alerts + notables})
    keys = {
        "risk": lambda u: (-u["risk"], -u["events"], u["name"]),
        "events": lambda u: (-u["events"], u["name"]),
        "name": lambda u: (u["name"],),
    }
    users.sort(key=keys[sort])
    context = {"users": users[:500], "total": len(users), "q": q, "sort": sort, "days": days}
    return render(request, "users.html", context)


def learning_status(request: Request, db: DetectDB) -> dict[str, Any]:
    """Whether baseline rules still learn, until when, and so why a user may have no notable."""
    data_dir = getattr(request.app.state, "data_dir", None)
    config = DetectConfig.load(data_dir) if data_dir is not None else DetectConfig()
    started, watermark = db.get_meta("started"), db.get_meta("watermark")
    if started is None:
        return {"learning": True, "until": None, "days": config.learning_days}
    until = float(started) + config.learning.total_seconds()
    now = float(watermark) if watermark is not None else until
    return {
        "learning": now < until,
        "until": from_epoch(until).isoformat(),
        "days": config.learning_days,
    }


# ``path``: a name holding "/" (its link quotes it as %2F, which arrives decoded) has a page too.
@router.get(
    "/users/{user:path}", response_class=HTMLResponse, dependencies=[require_role("analyst")]
)
def user_page(request: Request, user: str, days: int = 30) -> HTMLResponse:
    """One user: the map, what the logs say (roles, MFA, devices, apps), baseline, alerts."""
    db = detect_db(request)
    if db is None:
        return render(request, "error.html", {"error": "detections are not running"}, 503)
    days = max(1, min(days, 3650))
    timeline = user_timeline(user, db, days)
    counts: dict[str, int] = timeline["signins_by_country"]
    try:
        profile = user_profile(service_of(request).store, user, _since(days))
    except HubsightError as exc:
        profile = {"tops": {}, "roles": [], "error": exc.message}
    baseline = read_baseline(db, user.lower())
    return render(
        request,
        "user.html",
        {
            "t": timeline,
            "days": days,
            "profile": profile,
            "baseline": baseline_by_label(baseline.kinds),
            "learning": learning_status(request, db),
            "map": world_svg(
                counts,
                cited_countries(
                    timeline["recent_signins"], timeline["alerts"] + timeline["notables"]
                ),
            ),
            "countries": sorted(counts.items(), key=lambda item: -item[1]),
            "unplaced": sorted(c for c in counts if not on_map(c)),
        },
    )


@router.get(
    "/addresses/{address}", response_class=HTMLResponse, dependencies=[require_role("analyst")]
)
def address_page(request: Request, address: str, days: int = 30) -> HTMLResponse:
    """One address: where it is, its network, the users and results seen from it, alerts."""
    db = detect_db(request)
    profile = address_profile(service_of(request).store, address, _since(days))
    alerts = AlertStore(db).find(AlertFilter(source_ip=address, limit=200)) if db else []
    context: dict[str, Any] = {
        "address": address,
        "days": days,
        "p": profile,
        "alerts": [a.summary() for a in alerts],
    }
    return render(request, "address.html", context)


@router.get("/resources", response_class=HTMLResponse, dependencies=[require_role("analyst")])
def resource_page(request: Request, id: str = "", days: int = 30) -> HTMLResponse:
    """One Azure resource (its id in ``?id=``): operations on it and who did them, alerts."""
    if not id.strip():
        missing = {"error": "no resource id given", "back": ("/investigations", "investigations")}
        return render(request, "error.html", missing, 400)
    db = detect_db(request)
    activity = resource_activity(service_of(request).store, id, _since(days))
    investigations = (
        InvestigationStore(db).find(InvestigationFilter(text=f"resource:{id.lower()}", limit=50))
        if db
        else []
    )
    context: dict[str, Any] = {
        "resource": id,
        "days": days,
        "activity": activity,
        "investigations": [i.summary() for i in investigations],
    }
    return render(request, "resource.html", context)
