"""A fixed, hand-shaped set of 60 events for running LEQL end to end, plus a Python oracle.

Every run test states its expected answer as Python over ``ROWS`` (not as SQL), so the
compiler is checked against an independent reading of the query.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from hubsight.parsing.event import Event, LogSet

BASE = datetime(2026, 3, 1, tzinfo=UTC)
NOW = BASE + timedelta(days=2)
WINDOW = ("2026-02-28T00:00:00Z", "2026-03-03T00:00:00Z")
USERS = ["alice@corp.com", "bob@corp.com", "carol@corp.com", "dave@partner.org", ""]
RESULTS = ["SUCCESS", "FAILED_BAD_PASSWORD", "FAILED_MFA", "FAILED_ACCOUNT_LOCKED"]
IPS = ["10.0.0.5", "10.1.2.3", "192.168.1.20", "203.0.113.7", "198.51.100.9", "2001:db8::1", ""]
COUNTRIES = ["US", "GB", "FR", "RU", ""]
APPS = ["Azure Portal", "Microsoft Teams", "Office 365"]
CODES = [0, 50126, 50074, None]
SIGNIN = "Azure AD Sign-in"
ACTIVITY = "Azure Activity"
ALERTS = "Defender Alerts"


@dataclass
class Row:
    """One event as the oracle sees it."""

    id: int
    ts: datetime
    log_set: str
    log_name: str
    user: str
    result: str
    source_ip: str
    country: str
    error_code: int | None
    application: str
    interactive: bool | None
    tactics: list[str]
    latitude: float | None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def raw_text(self) -> str:
        """The raw record exactly as stored."""
        return json.dumps(self.raw)


def _row(i: int) -> Row:
    log = (SIGNIN, SIGNIN, SIGNIN, ACTIVITY, ALERTS)[i % 5] if i % 7 else SIGNIN
    log_set = {
        SIGNIN: "Ingress Authentication",
        ACTIVITY: "Cloud Service Admin Activity",
        ALERTS: "Third Party Alerts",
    }[log]
    user, result = USERS[i % 5], RESULTS[(i * 3) % 4]
    ip, country = IPS[i % 7], COUNTRIES[(i // 2) % 5]
    code = CODES[i % 4] if log == SIGNIN else None
    app = APPS[i % 3]
    auth = "singleFactorAuthentication" if i % 3 else "multiFactorAuthentication"
    raw: dict[str, Any] = {
        "time": (BASE + timedelta(minutes=47 * i)).isoformat(),
        "category": {SIGNIN: "SignInLogs", ACTIVITY: "Administrative", ALERTS: "SecurityAlert"}[
            log
        ],
        "properties": {
            "userPrincipalName": user,
            "appDisplayName": app,
            "authenticationRequirement": auth,
            "status": {"errorCode": code if code is not None else 0},
            "riskLevel": ("none", "low", "high")[i % 3],
            "attempt": i,
        },
        "message": f"Sign-in by {user or 'nobody'} from {ip or 'unknown'} result {result}",
    }
    if i % 4 == 0:
        raw["properties"]["appliedConditionalAccessPolicies"] = [
            {"displayName": ("Require MFA", "Block legacy")[i % 8 // 4], "result": "success"},
            {"displayName": "Require compliant device", "result": "notApplied"},
        ]
    if i % 10 == 0:
        raw["properties"]["deviceDetail"] = {"operatingSystem": "Windows 11", "isCompliant": True}
    return Row(
        id=i,
        ts=BASE + timedelta(minutes=47 * i, seconds=i),
        log_set=log_set,
        log_name=log,
        user=user,
        result=result,
        source_ip=ip,
        country=country,
        error_code=code,
        application=app if log != ALERTS else "",
        interactive=(i % 2 == 0) if log == SIGNIN else None,
        tactics=["InitialAccess", "CredentialAccess"][: 1 + i % 2] if log == ALERTS else [],
        latitude=round(10.5 * (i % 6), 1) if country else None,
        raw=raw,
    )


ROWS = [_row(i) for i in range(60)]


def events() -> list[Event]:
    """The data set as events."""
    out = []
    for r in ROWS:
        out.append(
            Event(
                timestamp=r.ts,
                log_set=LogSet(r.log_set),
                log_name=r.log_name,
                raw=msgspec.Raw(r.raw_text.encode()),
                source_topic="insights",
                source_partition=0,
                source_offset=r.id,
                record_index=0,
                user=r.user or None,
                result=r.result,
                source_ip=r.source_ip or None,
                geoip_country_code=r.country or None,
                geoip_latitude=r.latitude,
                error_code=r.error_code,
                application=r.application or None,
                is_interactive=r.interactive,
                mitre_tactics=r.tactics or None,
            )
        )
    return out


# ---- the oracle ---------------------------------------------------------------------------

Pred = Callable[[Row], bool]
_TOKEN = re.compile("[A-Za-z0-9\u0080-\U0010ffff]+")


def newest(pred: Pred, rows: Iterable[Row] = ROWS, limit: int = 100) -> list[int]:
    """Ids of matching events, newest first."""
    return [r.id for r in sorted((r for r in rows if pred(r)), key=lambda r: r.ts, reverse=True)][
        :limit
    ]


def oldest(pred: Pred, limit: int = 100) -> list[int]:
    """Ids of matching events, oldest first."""
    return [r.id for r in sorted((r for r in ROWS if pred(r)), key=lambda r: r.ts)][:limit]


def keyword(r: Row, word: str) -> bool:
    """Case-sensitive, token-bounded search of the raw text."""
    text = r.raw_text
    if _TOKEN.fullmatch(word):
        return word in _TOKEN.findall(text)
    start = 0
    while (at := text.find(word, start)) >= 0:
        before = text[at - 1] if at else " "
        after = text[at + len(word)] if at + len(word) < len(text) else " "
        edge_ok = not (_TOKEN.match(word[0]) and _TOKEN.match(before)) and not (
            _TOKEN.match(word[-1]) and _TOKEN.match(after)
        )
        if edge_ok:
            return True
        start = at + 1
    return False


def groups(
    key: Callable[[Row], Any],
    pred: Pred = lambda r: True,
    value: Callable[[list[Row]], Any] = len,
    *,
    limit: int = 40,
    descending: bool = True,
) -> list[list[Any]]:
    """``groupby`` rows: [key, value] by value (desc), then key, over events with the key."""
    buckets: dict[Any, list[Row]] = {}
    for r in ROWS:
        k = key(r)
        if pred(r) and k not in ("", None):
            buckets.setdefault(k, []).append(r)
    rows = [[k, value(v)] for k, v in buckets.items()]
    rows.sort(key=lambda kv: kv[0])
    rows.sort(key=lambda kv: kv[1], reverse=descending)
    return rows[:limit]


def count(pred: Pred) -> int:
    """How many events match."""
    return sum(1 for r in ROWS if pred(r))


def tally(values: Iterable[Any]) -> Counter[Any]:
    """A multiset of values, for order-free comparisons."""
    return Counter(values)
