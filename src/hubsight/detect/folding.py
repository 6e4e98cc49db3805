"""How findings become alerts: deduplicated, joined by rule and entity, retracted when untrue.

A finding with a ``stable_key`` lands on the one alert of its rule and entity. Any other joins
the alerts of its rule and entity whose events lie within the rule's ``dedup_minutes`` of its
own (see ``sessions``), joining them into one when it reaches several. A retraction removes its
evidence; an alert left without any is withdrawn. The alerts a batch created, changed and
withdrew wait here until the engine has committed them in one transaction (a batch whose commit
failed stays, and joins the next).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from hubsight.detect.alerts import (
    Alert,
    AlertStore,
    alert_id,
    merge_context,
    merge_evidence,
)
from hubsight.detect.base import EventRef, Finding, Rule
from hubsight.detect.baseline import from_epoch
from hubsight.detect.db import DetectDB
from hubsight.detect.expiry import Gone
from hubsight.detect.notables import relink
from hubsight.detect.sessions import MERGED_INTO, Sessions, Span, session_prefix

# Stored alerts kept in memory at most (a few kilobytes each); beyond it they are forgotten
# and read again from the database when a finding needs them.
_MAX_KNOWN = 50_000


class Taken(NamedTuple):
    """What one batch did to the alerts."""

    # Created or changed, new ones first.
    changed: list[Alert]
    withdrawn: list[Alert]
    # The evidence of changed alerts stored before, as stored (by dedup key).
    stored_evidence: dict[str, list[EventRef]]


class AlertFolder:
    """The alerts one batch created, changed or withdrew, and the folding that makes them."""

    def __init__(self, db: DetectDB, alerts: AlertStore, *, persist: bool) -> None:
        self._alerts = alerts
        self._persist = persist
        self._sessions = Sessions(db if persist else None)
        # Alerts of the current batch.
        self._pending: dict[str, Alert] = {}
        self._created: set[str] = set()
        # Alerts already stored, by dedup key: all of them when not persisting (replays); else
        # those this engine saved or read, so that a loud rule's alert is not read and decoded
        # from the database for every finding (a third of detection time with SigmaHQ's rules).
        # The database stays the truth: a key not here is looked up there.
        self._known: dict[str, Alert] = {}
        # Alerts the current batch withdrew (a late event showed them untrue), by dedup key.
        self._withdrawn: dict[str, Alert] = {}
        # Per user, the notables (id -> event time) that alerts about the user list: kept here,
        # as nearly every batch asks and notables are few.
        self._notables: dict[str, dict[str, datetime]] = {}
        if persist:
            for row in db.rows("SELECT id, user, last_event_time FROM alerts WHERE notable = 1"):
                mine = self._notables.setdefault(row["user"] or "", {})
                mine[str(row["id"])] = from_epoch(float(row["last_event_time"]))

    def fold(self, rule: Rule[Any], finding: Finding) -> None:
        """Fold ``finding`` of ``rule`` into the alerts of the batch."""
        meta = rule.meta
        if finding.stable_key:
            key = f"{meta.id}|{finding.entity}"
            if finding.retract:
                self._retract(key, finding.evidence, session=False)
            else:
                self._fold_into(key, rule, finding, session=False)
            return
        # The alerts of this rule and entity within its dedup window of the finding (see
        # ``sessions``): it joins them, under the key of the bucket their first event is in.
        prefix = session_prefix(meta.id, finding.entity)
        width = rule.config.dedup_minutes * 60.0
        bounds = _bounds(finding)
        low = bounds[0].timestamp()
        touching = self._sessions.touching(prefix, low, bounds[1].timestamp(), width)
        if finding.retract:
            for key in touching:
                self._retract(key, finding.evidence)
            return
        joined = [alert for alert in map(self._lookup, touching) if alert is not None]
        first = min([low, *(a.first_event_time.timestamp() for a in joined)])
        key = f"{prefix}{int(first // width)}"
        # The alert under ``key`` is nearly always among those just looked up: looking it up
        # again would copy it from the stored ones a second time.
        held = next((a for a in joined if a.dedup_key == key), None)
        self._fold_into(key, rule, finding, alert=held, bounds=bounds)
        for other in joined:
            if other.dedup_key != key:
                self._absorb(key, rule, other)

    def take(self) -> Taken:
        """What the batch (and any whose save failed) did to the alerts.

        Notables are linked first, so the alerts listing a notable that moved are among them.
        Call ``saved`` once the alerts are stored: until then the stored ones stay as they were,
        and the batch stays here, so that a failed save loses nothing: the next batch folds into
        its alerts and the next ``take`` gives them again, with its own changes.
        """
        self._link_notables()
        pending, known = self._pending, self._known
        created = [pending[k] for k in sorted(self._created)]
        changed = created + [a for k, a in sorted(pending.items()) if k not in self._created]
        stored = {key: alert.evidence for key in pending if (alert := known.get(key)) is not None}
        return Taken(changed, list(self._withdrawn.values()), stored)

    def saved(self) -> None:
        """The alerts ``take`` gave are stored: fold the next findings into them."""
        pending, withdrawn = self._pending, self._withdrawn
        self._pending, self._withdrawn, self._created = {}, {}, set()
        if self._persist and len(self._known) > _MAX_KNOWN:
            self._known.clear()
        self._known.update(pending)
        for key in withdrawn:
            # A withdrawn alert someone triaged stays in the database: it is read from there.
            self._known.pop(key, None)

    def forget(self, gone: Iterable[Gone]) -> None:
        """Forget what is held of alerts deleted from the database (case retention)."""
        for alert in gone:
            self._known.pop(alert.dedup_key, None)
            self._sessions.forget(alert.dedup_key)
            if alert.notable:
                self._notables.get(alert.user or "", {}).pop(alert.id, None)

    def _absorb(self, key: str, rule: Rule[Any], other: Alert) -> None:
        """Fold the alert ``other`` into the alert ``key`` of the same rule and entity."""
        context = {k: v for k, v in other.context.items() if k != MERGED_INTO}
        as_finding = Finding(
            entity="",
            title=other.title,
            at=other.first_event_time,
            evidence=other.evidence,
            user=other.user,
            source_ip=other.source_ip,
            severity=other.severity,
            baseline=other.baseline,
            context=context,
        )
        self._fold_into(key, rule, as_finding, (other.first_event_time, other.last_event_time))
        gone = other.dedup_key
        self._pending.pop(gone, None)
        self._sessions.drop(gone)
        if gone in self._created:
            self._created.discard(gone)
        else:
            # Receivers of the merged alert are told where it went (notify's follow-up).
            other.context[MERGED_INTO] = alert_id(key)
            self._withdrawn[gone] = other

    def _fold_into(
        self,
        key: str,
        rule: Rule[Any],
        finding: Finding,
        span: tuple[datetime, datetime] | None = None,
        *,
        session: bool = True,
        alert: Alert | None = None,
        bounds: tuple[datetime, datetime] | None = None,
    ) -> None:
        """Fold ``finding`` into the alert ``key`` (``alert``: that alert, already looked up;
        ``bounds``: the finding's earliest and latest event time, already worked out)."""
        meta = rule.meta
        low, high = bounds or _bounds(finding)
        if span is not None:
            # An absorbed alert's evidence is capped: its span says where it really lies.
            low, high = min(low, span[0]), max(high, span[1])
        severity = finding.severity or meta.severity
        if alert is None:
            alert = self._lookup(key)
        if alert is None:
            alert = Alert(
                id=alert_id(key),
                dedup_key=key,
                rule_id=meta.id,
                title=finding.title,
                severity=severity,
                notable=meta.notable,
                technique=meta.technique,
                runbook=meta.runbook,
                first_event_time=low,
                last_event_time=high,
                evidence=merge_evidence([], finding.evidence),
                user=finding.user,
                source_ip=finding.source_ip,
                baseline=finding.baseline,
                context=dict(finding.context),
            )
            gone = self._withdrawn.pop(key, None)
            if gone is None:
                self._created.add(key)
            else:
                # Withdrawn and found again in one batch: an update, never notified twice.
                alert.revision = gone.revision + 1
            self._pending[key] = alert
            if session:
                self._sessions.set(key, _span(alert))
            return
        # What changes is worked out field by field: a loud rule's alert takes a finding per
        # event, and encoding it twice to compare cost more than the rest of the fold.
        # Both merges give back the alert's own list and dict when nothing joins them, the
        # common case (a loud rule's full evidence, a Sigma rule's fixed context): told apart by
        # identity, not by comparing a hundred references.
        evidence = merge_evidence(alert.evidence, finding.evidence)
        first = min(alert.first_event_time, low)
        last = max(alert.last_event_time, high)
        context = merge_context(alert.context, finding.context)
        baseline = alert.baseline or finding.baseline
        raised = severity.rank > alert.severity.rank
        if (
            raised
            or first != alert.first_event_time
            or last != alert.last_event_time
            or (evidence is not alert.evidence and evidence != alert.evidence)
            or baseline != alert.baseline
            or (context is not alert.context and context != alert.context)
        ):
            alert.evidence, alert.context, alert.baseline = evidence, context, baseline
            if low < alert.first_event_time:
                # An alert whose findings name different callers (one per exposure, written by
                # a pipeline and by people) is about its earliest event's, as in-order delivery
                # makes it, whichever came first; its notables are those of that user.
                if (finding.user, finding.source_ip) != (alert.user, alert.source_ip):
                    alert.user, alert.source_ip = finding.user, finding.source_ip
                    alert.context = context = dict(context)
                    context.pop("notables", None)
                if not raised and severity.rank == alert.severity.rank:
                    alert.title = finding.title
            alert.first_event_time, alert.last_event_time = first, last
            if raised:
                alert.severity, alert.title = severity, finding.title
            if key not in self._pending:
                alert.revision += 1
            self._pending[key] = alert
            if session:
                self._sessions.set(key, _span(alert))

    def _retract(self, key: str, evidence: Sequence[EventRef], *, session: bool = True) -> None:
        alert = self._lookup(key)
        if alert is None:
            return
        drop = set(evidence)
        kept = [ref for ref in alert.evidence if ref not in drop]
        if len(kept) == len(alert.evidence):
            return
        if kept:
            alert.evidence = kept
            alert.first_event_time = kept[0].timestamp
            alert.last_event_time = max(ref.timestamp for ref in kept)
            if key not in self._pending:
                alert.revision += 1
            self._pending[key] = alert
            if session:
                self._sessions.set(key, _span(alert))
        else:
            self._pending.pop(key, None)
            if session:
                self._sessions.drop(key)
            if key in self._created:
                self._created.discard(key)
            else:
                self._withdrawn[key] = alert

    def _lookup(self, key: str) -> Alert | None:
        alert = self._pending.get(key)
        if alert is not None:
            return alert
        if key in self._withdrawn:
            return None
        alert = self._known.get(key)
        if alert is None:
            if not self._persist:
                return None
            alert = self._alerts.by_dedup_key(key)
            if alert is None:
                return None
            self._known[key] = alert
        # A copy: what ``process`` returned earlier stays as it was (folding assigns new lists,
        # and changes only the context in place).
        return msgspec.structs.replace(alert, context=dict(alert.context))

    def _link_notables(self) -> None:
        """Work out again the notables of alerts about users whose alerts or notables changed."""
        pending, withdrawn, known = self._pending, self._withdrawn, self._notables
        moved = [a for a in (*pending.values(), *withdrawn.values()) if a.notable and a.user]
        # Per user, the earliest time a notable left or landed on: alerts ending before it keep
        # their lists. A notable moves later too, when later events join it (a content rule's).
        since: dict[str, datetime] = {}
        for notable in moved:
            user = notable.user or ""
            mine = known.setdefault(user, {})
            left = mine.get(notable.id, notable.last_event_time)
            if notable.dedup_key in withdrawn:
                mine.pop(notable.id, None)
            else:
                mine[notable.id] = notable.last_event_time
            earliest = min(left, notable.last_event_time)
            since[user] = min(since.get(user, earliest), earliest)
        mine_pending: dict[str, list[Alert]] = {}
        for alert in pending.values():
            if alert.user and not alert.notable:
                mine_pending.setdefault(alert.user, []).append(alert)
        users = set(mine_pending) | {a.user for a in moved if a.user}
        for user in sorted(users):
            current = mine_pending.get(user, [])
            if user in since:
                alerts = {a.dedup_key: a for a in self._stored_alerts(user, since[user])}
                alerts.update((a.dedup_key, a) for a in current)
                current = [a for k, a in alerts.items() if k not in withdrawn]
            # Else no notable of the user moved: only the batch's own alerts may list others
            # now (pending, so none is withdrawn); the stored ones keep their lists.
            for alert in relink(current, known.get(user, {})):
                if alert.dedup_key not in pending:
                    alert.revision += 1
                    pending[alert.dedup_key] = alert

    def _stored_alerts(self, user: str, since: datetime) -> list[Alert]:
        """Stored alerts (not notables) of ``user`` ending at or after ``since``."""
        if not self._persist:
            return [
                a
                for a in self._known.values()
                if a.user == user and not a.notable and a.last_event_time >= since
            ]
        # Their keys only, then each as a finding would fold into it: from memory when this
        # engine holds it (decoding every alert of the user, evidence and all, took a tenth of
        # the save), and then saved by appending to its stored evidence, not writing it again.
        keys = self._alerts.dedup_keys(user=user, notable=False, since=since)
        # Those this engine does not hold are read in one query, not one each.
        # Asked of each held dict in turn: their union, a set of every known key (up to
        # ``_MAX_KNOWN``), cost more than the rest of the batch's relinking together.
        pending, withdrawn, known = self._pending, self._withdrawn, self._known
        unheld = [k for k in keys if k not in pending and k not in withdrawn and k not in known]
        self._known.update((a.dedup_key, a) for a in self._alerts.by_dedup_keys(unheld))
        return [alert for alert in map(self._lookup, keys) if alert is not None]


def _bounds(finding: Finding) -> tuple[datetime, datetime]:
    """The earliest and latest event time of ``finding`` (its time when it cites none)."""
    evidence = finding.evidence
    if not evidence:
        return finding.at, finding.at
    if len(evidence) == 1:
        at = evidence[0].timestamp
        return at, at
    times = [ref.timestamp for ref in evidence]
    return min(times), max(times)


def _span(alert: Alert) -> Span:
    return (alert.first_event_time.timestamp(), alert.last_event_time.timestamp())
