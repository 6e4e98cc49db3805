"""REST routes of detections: alerts (triage), rules and notification targets, user timelines.

The app provides ``app.state.detect_db`` (a ``hubsight.detect.db.DetectDB``, e.g.
``DetectDB.in_dir(data_dir)``) and optionally ``app.state.data_dir`` (for ``detect.toml`` and the
key that encrypts secrets; else the database's folder). Rule and target changes made here are
stored in the detection database; a running engine applies them within seconds (see
``hubsight.detect.runtime.Detection``). Changing rules and targets takes the admin role, and so
does sending a test notification (each route declares its role); analysts may read both.
Target secrets are write-only.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hubsight.detect.alerts import Alert, AlertFilter, AlertStore, Disposition, Status
from hubsight.detect.base import EventRef, Rule, Severity
from hubsight.detect.db import DetectDB
from hubsight.detect.families import family_of, family_title, tactics_of
from hubsight.detect.notify import send_test
from hubsight.detect.ruleset import build_rule, rule_class, rule_classes, settings_schema
from hubsight.detect.runtime import load_targets
from hubsight.detect.settings import DetectConfig, RuleExceptions, SettingsStore, effective
from hubsight.detect.state import read_baseline
from hubsight.detect.targets import Target, TargetStore, keep_secrets, parse_target, public
from hubsight.errors import (
    ConfigError,
    HubsightError,
    NotFoundError,
    SettingError,
    StoreError,
)
from hubsight.store.audit import changes
from hubsight.store.vault import Vault
from hubsight.web.auditing import audit_note, audited
from hubsight.web.auth import require_role
from hubsight.web.responses import error_response

router = APIRouter(prefix="/api/v1")


def get_db(request: Request) -> DetectDB:
    """The detection database the app was given."""
    db: DetectDB | None = getattr(request.app.state, "detect_db", None)
    if db is None:
        raise StoreError(
            "detections are not set up in this API", hint="set app.state.detect_db at start-up"
        )
    return db


def _config(request: Request) -> DetectConfig:
    data_dir: Path | None = getattr(request.app.state, "data_dir", None)
    return DetectConfig.load(data_dir) if data_dir is not None else DetectConfig()


def _data_dir(request: Request, db: DetectDB) -> Path:
    data_dir: Path | None = getattr(request.app.state, "data_dir", None)
    return data_dir if data_dir is not None else db.path.parent


Db = Annotated[DetectDB, Depends(get_db)]


def evidence_link(ref: EventRef) -> dict[str, Any]:
    """An evidence reference with the Log Search link to the event and its neighbours."""
    # The event id of Log Search: its log, position, time in ms and index, base64 of JSON.
    key = [
        ref.log_set,
        ref.log_name,
        ref.source_topic,
        ref.source_partition,
        ref.source_offset,
        int(ref.timestamp.timestamp() * 1000),
        ref.record_index,
    ]
    event_id = base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")
    return {
        **ref.as_dict(),
        "event_id": event_id,
        "context_url": f"/api/v1/events/{event_id}/context",
    }


def alert_detail(store: AlertStore, alert: Alert) -> dict[str, Any]:
    """An alert with its evidence links, context and triage history."""
    return {
        **alert.summary(),
        "evidence": [evidence_link(ref) for ref in alert.evidence],
        "technique": alert.technique,
        "runbook": alert.runbook,
        "context": alert.context,
        "history": store.history(alert.id),
    }


def actor_of(request: Request, claimed: str) -> str:
    """Who makes a change: behind sign-in the signed-in account, whatever the body claims."""
    account = getattr(request.state, "account", None)
    signed_in = getattr(request.app.state, "auth", None) is not None
    return account.name if account is not None and signed_in else claimed


def check_assignee(request: Request, assignee: str | None) -> None:
    """Refuse an assignee who is not a console account (when the console has accounts)."""
    auth = getattr(request.app.state, "auth", None)
    if not assignee or auth is None:
        return
    names = [a.name for a in auth.users.accounts()]
    if assignee not in names:
        raise ConfigError(
            f"no console account named {assignee!r}",
            hint=f"assign one of: {', '.join(names)}",
        )


# A list's page: out of range is a 422 naming it (it was clamped without a word).
ListLimit = Annotated[int, Query(ge=1, le=1000, description="Most items to return, 1 to 1000")]


@router.get("/alerts", dependencies=[require_role("analyst")])
def list_alerts(
    db: Db,
    status: Status | None = None,
    severity: Severity | None = None,
    rule_id: str | None = None,
    user: str | None = None,
    assignee: str | None = None,
    notables: bool = False,
    since: datetime | None = None,
    limit: ListLimit = 100,
) -> list[dict[str, Any]]:
    """Alerts (and notables when asked), most recent event first."""
    flt = AlertFilter(
        status=status,
        severity=severity,
        rule_id=rule_id,
        user=user,
        assignee=assignee or None,
        notable=None if notables else False,
        since=since,
        limit=limit,
    )
    return [alert.summary() for alert in AlertStore(db).find(flt)]


@router.get("/alerts/{alert_id}", response_model=None, dependencies=[require_role("analyst")])
def get_alert(alert_id: str, db: Db) -> dict[str, Any] | JSONResponse:
    """One alert with evidence, baseline, context and history."""
    store = AlertStore(db)
    try:
        return alert_detail(store, store.get(alert_id))
    except HubsightError as exc:
        return error_response(exc)


class TriageChange(BaseModel):
    """The triage fields alerts and investigations share; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    disposition: Disposition | None = None
    assignee: str | None = None
    actor: str = "api"


class AlertUpdate(TriageChange):
    """Triage changes of one alert, with a comment; an empty assignee unassigns."""

    comment: str | None = Field(default=None, max_length=10_000)


@router.patch(
    "/alerts/{alert_id}",
    response_model=None,
    dependencies=[require_role("analyst"), audited("alert.triage")],
)
def update_alert(
    request: Request, alert_id: str, body: AlertUpdate, db: Db
) -> dict[str, Any] | JSONResponse:
    """Change status, disposition or assignee, or add a comment."""
    store = AlertStore(db)
    try:
        check_assignee(request, body.assignee)
        before = store.get(alert_id)
        alert = store.update(
            alert_id,
            actor=actor_of(request, body.actor),
            status=body.status,
            disposition=body.disposition,
            assignee=body.assignee,
            comment=body.comment,
        )
    except HubsightError as exc:
        return error_response(exc)
    note_triage(request, [before], [alert], body.comment)
    return alert_detail(store, alert)


_TRIAGED = ("status", "disposition", "assignee")


def note_triage(
    request: Request, before: list[Alert], after: list[Alert], comment: str | None
) -> None:
    """What triage changed on these alerts, for the audit trail."""
    note = audit_note(request)
    note.changes = {}
    for old, new in zip(before, after, strict=True):
        found = changes(
            {k: getattr(old, k) for k in _TRIAGED}, {k: getattr(new, k) for k in _TRIAGED}
        )
        note.changes |= {f"{new.id}.{k}" if len(after) > 1 else k: v for k, v in found.items()}
    if comment:
        note.details["comment"] = comment


def _shipped_class(rule_id: str) -> type[Rule[Any]]:
    """The built-in or shipped rule ``rule_id``; an imported one is the CLI's to switch."""
    try:
        return rule_class(rule_id)
    except NotFoundError:
        if not rule_id.startswith(("sigma.", "custom.")):
            raise
        # `hubsight rules list`, which the general hint names, lists imported Sigma rules too.
        raise NotFoundError(
            f"no built-in or shipped rule {rule_id!r}: the API lists and tunes those only",
            hint=f"switch an imported Sigma rule on the server: hubsight rules enable|disable "
            f"{rule_id}",
        ) from None


def _rule_doc(request: Request, db: DetectDB, rule_id: str) -> dict[str, Any]:
    cls = _shipped_class(rule_id)
    settings = effective(_config(request), SettingsStore(db).all(), rule_id)
    meta = cls.meta
    return {
        "id": meta.id,
        "title": meta.title,
        "description": meta.description,
        "severity": meta.severity.value,
        "technique": meta.technique,
        "tactics": list(tactics_of(meta)),
        "family": family_of(meta),
        "family_title": family_title(family_of(meta)),
        "log_sets": sorted(str(s) for s in meta.log_sets),
        "runbook": meta.runbook,
        "notable": meta.notable,
        "enabled": settings.enabled is not False,
        "thresholds": build_rule(cls, settings.thresholds).config.model_dump(mode="json"),
        "settings_schema": settings_schema(cls),
        "exceptions": settings.exceptions.model_dump(mode="json"),
    }


@router.get("/rules", dependencies=[require_role("analyst")])
def list_rules(request: Request, db: Db) -> list[dict[str, Any]]:
    """Every rule with its settings."""
    return [_rule_doc(request, db, cls.meta.id) for cls in rule_classes()]


class Enabled(BaseModel):
    """Switch a rule on or off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool


_RULE_AUDIT = [require_role("admin"), audited("rule.update")]


def _note_rule(request: Request, before: dict[str, Any], after: dict[str, Any]) -> None:
    keys = ("enabled", "thresholds", "exceptions")
    audit_note(request).changes = changes({k: before[k] for k in keys}, {k: after[k] for k in keys})


@router.put("/rules/{rule_id}/enabled", response_model=None, dependencies=_RULE_AUDIT)
def set_enabled(
    request: Request, rule_id: str, body: Enabled, db: Db
) -> dict[str, Any] | JSONResponse:
    """Enable or disable a rule."""
    try:
        before = _rule_doc(request, db, rule_id)
        SettingsStore(db).set_enabled(rule_id, body.enabled)
        after = _rule_doc(request, db, rule_id)
    except HubsightError as exc:
        return error_response(exc)
    _note_rule(request, before, after)
    return after


@router.put("/rules/{rule_id}/thresholds", response_model=None, dependencies=_RULE_AUDIT)
def set_thresholds(
    request: Request, rule_id: str, body: dict[str, Any], db: Db
) -> dict[str, Any] | JSONResponse:
    """Replace a rule's threshold overrides (validated against the rule's config)."""
    try:
        before = _rule_doc(request, db, rule_id)
        build_rule(_shipped_class(rule_id), body)
        SettingsStore(db).set_thresholds(rule_id, body)
        after = _rule_doc(request, db, rule_id)
    except HubsightError as exc:
        return error_response(exc)
    _note_rule(request, before, after)
    return after


@router.put("/rules/{rule_id}/exceptions", response_model=None, dependencies=_RULE_AUDIT)
def set_exceptions(
    request: Request, rule_id: str, body: RuleExceptions, db: Db
) -> dict[str, Any] | JSONResponse:
    """Replace a rule's exceptions (users, IPs or CIDRs, apps)."""
    try:
        before = _rule_doc(request, db, rule_id)
        SettingsStore(db).set_exceptions(rule_id, body)
        after = _rule_doc(request, db, rule_id)
    except HubsightError as exc:
        return error_response(exc)
    _note_rule(request, before, after)
    return after


class Tuning(BaseModel):
    """A rule's threshold overrides and exceptions, saved together."""

    model_config = ConfigDict(extra="forbid")

    thresholds: dict[str, Any]
    exceptions: RuleExceptions


@router.put("/rules/{rule_id}/tuning", response_model=None, dependencies=_RULE_AUDIT)
def set_tuning(
    request: Request, rule_id: str, body: Tuning, db: Db
) -> dict[str, Any] | JSONResponse:
    """Replace a rule's thresholds and exceptions in one change: a refusal of either keeps both.

    A refused value's ``field`` says which part it is in (``thresholds.count``, ``exceptions.ips``).
    """
    try:
        before = _rule_doc(request, db, rule_id)
        with _in_part("thresholds"):
            build_rule(_shipped_class(rule_id), body.thresholds)
        with _in_part("exceptions"):
            body.exceptions.validate_ips()
        SettingsStore(db).set_tuning(rule_id, body.thresholds, body.exceptions)
        after = _rule_doc(request, db, rule_id)
    except HubsightError as exc:
        return error_response(exc)
    _note_rule(request, before, after)
    return after


@contextmanager
def _in_part(part: str) -> Iterator[None]:
    """Prefix a refused setting's ``field`` with the part of the body it is in."""
    try:
        yield
    except SettingError as exc:
        raise SettingError(exc.message, field=f"{part}.{exc.field}", hint=exc.hint) from exc


@router.get("/users/{user:path}/timeline", dependencies=[require_role("analyst")])
def user_timeline(
    user: str, db: Db, days: Annotated[int, Query(ge=1, le=3650)] = 30
) -> dict[str, Any]:
    """A user's sign-ins by country, recent sign-ins, notables and alerts."""
    subject = user.lower()
    baseline = read_baseline(db, subject)
    store = AlertStore(db)
    since = datetime.now().astimezone() - timedelta(days=days)
    found = store.find(AlertFilter(user=subject, since=since, limit=500))
    latest = max((s.ts for s in baseline.recent), default=None)
    recent = (
        baseline.recent_signins(datetime.fromtimestamp(latest).astimezone(), timedelta(days=90))
        if latest is not None
        else []
    )
    return {
        "user": subject,
        "signins_by_country": baseline.country_counts(),
        "recent_signins": recent,
        "notables": [a.summary() for a in found if a.notable],
        "alerts": [a.summary() for a in found if not a.notable],
    }


def _targets(request: Request, db: DetectDB) -> TargetStore:
    return TargetStore(db, Vault(_data_dir(request, db)))


def target_docs(request: Request, db: DetectDB) -> list[dict[str, Any]]:
    """The notification targets in use as the API shows them (the Settings page too)."""
    return [public(c.target, c.origin) for c in load_targets(_data_dir(request, db), db)]


@router.get("/notify/targets", response_model=None, dependencies=[require_role("analyst")])
def list_targets(request: Request, db: Db) -> list[dict[str, Any]] | JSONResponse:
    """Notification targets in use, with where each was set; secrets only as "set"/"not set"."""
    try:
        return target_docs(request, db)
    except HubsightError as exc:
        return error_response(exc)


@router.post(
    "/notify/targets",
    status_code=201,
    response_model=None,
    dependencies=[require_role("admin"), audited("target.create")],
)
def add_target(request: Request, body: dict[str, Any], db: Db) -> dict[str, Any] | JSONResponse:
    """Add a target (webhook, syslog or smtp); it takes effect within seconds."""
    try:
        target = parse_target(body)
        _targets(request, db).add(target)
    except HubsightError as exc:
        return error_response(exc)
    _note_target(request, None, target)
    return public(target, "console")


def _note_target(request: Request, before: Target | None, after: Target | None) -> None:
    """What a target change did, for the audit trail: public fields, and which secrets changed."""
    note = audit_note(request)
    either = after or before
    note.target = either.name if either is not None else None
    note.changes = changes(
        public(before, "console") if before else {}, public(after, "console") if after else {}
    )
    if before is not None and after is not None and before.kind == after.kind:
        for secret in after.secret_fields:
            old, new = getattr(before, secret), getattr(after, secret)
            if old is not None and new is not None and old != new:
                note.changes[secret] = ["set", "(changed)"]


@router.put(
    "/notify/targets/{name}",
    response_model=None,
    dependencies=[require_role("admin"), audited("target.update")],
)
def replace_target(
    request: Request, name: str, body: dict[str, Any], db: Db
) -> dict[str, Any] | JSONResponse:
    """Replace a target added in the console; a secret left empty keeps its stored value."""
    store = _targets(request, db)
    try:
        if body.get("name", name) != name:
            raise ConfigError("a target cannot be renamed", hint="add a new target instead")
        current = store.get(name)
        target = keep_secrets(body | {"name": name}, current)
        store.replace(target)
    except HubsightError as exc:
        return error_response(exc)
    _note_target(request, current, target)
    return public(target, "console")


@router.delete(
    "/notify/targets/{name}",
    status_code=204,
    response_model=None,
    dependencies=[require_role("admin"), audited("target.delete")],
)
def delete_target(request: Request, name: str, db: Db) -> JSONResponse | None:
    """Remove a target added in the console."""
    store = _targets(request, db)
    try:
        current = store.get(name)
        store.remove(name)
    except HubsightError as exc:
        return error_response(exc)
    _note_target(request, current, None)
    return None


@router.post(
    "/notify/targets/{name}/test",
    response_model=None,
    dependencies=[require_role("admin"), audited("target.test")],
)
def test_target(request: Request, name: str, db: Db) -> dict[str, Any] | JSONResponse:
    """Send one test notification now and report the delivery: ok, or the error and a hint."""
    try:
        found = {c.name: c.target for c in load_targets(_data_dir(request, db), db)}
    except HubsightError as exc:
        return error_response(exc)
    if name not in found:
        return error_response(
            NotFoundError(
                f"no notification target named {name!r}", hint="the Settings page lists them"
            )
        )
    return send_test(found[name]).as_dict()
