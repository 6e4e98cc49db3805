"""LEQL queries run on the fixed data set, each checked against the Python oracle."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from hubsight.query.search import SearchRequest, search
from hubsight.store.embedded import EmbeddedStore

from .dataset import (
    ACTIVITY,
    BASE,
    NOW,
    ROWS,
    SIGNIN,
    WINDOW,
    Row,
    count,
    groups,
    keyword,
    newest,
    oldest,
)

A, B, C, D = "alice@corp.com", "bob@corp.com", "carol@corp.com", "dave@partner.org"
Expected = Callable[[], Any]


def _in(ip: str, net: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(net)
    except ValueError:
        return False


def _raw(r: Row, *path: str) -> Any:
    node: Any = r.raw
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _quantile(values: list[float], level: float) -> float:
    """Interpolated between the two nearest values, as InsightIDR documents percentiles."""
    ordered = sorted(values)
    at = level * (len(ordered) - 1)
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def _stddev(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _codes(rows: list[Row]) -> list[int]:
    return [r.error_code for r in rows if r.error_code is not None]


def _day_series(pred: Callable[[Row], bool], width_h: int = 24) -> list[list[Any]]:
    start = datetime.fromisoformat(WINDOW[0])
    end = datetime.fromisoformat(WINDOW[1])
    width = timedelta(hours=width_h)
    out = []
    at = start
    while at < end:
        n = sum(1 for r in ROWS if pred(r) and at <= r.ts < at + width)
        out.append([at.strftime("%Y-%m-%dT%H:%M:%S.000Z"), n])
        at += width
    return out


def _ranked_series(
    key: Callable[[Row], str],
    pred: Callable[[Row], bool] = lambda r: True,
    *,
    limit: int,
    width_h: int = 24,
) -> list[list[Any]]:
    """Counts per bucket of the ``limit`` groups largest in total, then the rest as "other",
    every bucket of the window listed (zero where a group has no events)."""
    totals: dict[str, int] = {}
    for r in ROWS:
        if pred(r):
            totals[key(r)] = totals.get(key(r), 0) + 1
    ranked = sorted(totals, key=lambda k: (-totals[k], k))
    top, rest = ranked[:limit], set(ranked[limit:])

    def group(k: str) -> Callable[[Row], bool]:
        return lambda r: pred(r) and key(r) == k

    series = {k: _day_series(group(k), width_h) for k in top}
    if rest:
        series["other"] = _day_series(lambda r: pred(r) and key(r) in rest, width_h)
    order = [*top, *(["other"] if rest else [])]
    buckets = len(_day_series(lambda r: True, width_h))
    return [[series[k][b][0], k, series[k][b][1]] for b in range(buckets) for k in order]


def _attempts(pred: Callable[[Row], bool] = lambda r: True) -> list[float]:
    return [float(r.raw["properties"]["attempt"]) for r in ROWS if pred(r)]


def _on_day_of(bucket: str) -> Callable[[Row], bool]:
    """Rows on the day a bucket's time (ISO text) falls on."""
    return lambda r: r.ts.strftime("%Y-%m-%d") == bucket[:10]


def _of_user(user: str) -> Callable[[Row], bool]:
    return lambda r: r.user == user


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _ids(pred: Callable[[Row], bool]) -> Expected:
    return lambda: newest(pred)


def _kw(word: str) -> Expected:
    return _ids(lambda r: keyword(r, word))


CASES: list[tuple[str, Expected]] = [
    # equality and comparisons on normalized fields
    ("where(user=alice@corp.com)", _ids(lambda r: r.user == A)),
    ('where(user="bob@corp.com")', _ids(lambda r: r.user == B)),
    ("where(user='carol@corp.com')", _ids(lambda r: r.user == C)),
    ('where(user="""dave@partner.org""")', _ids(lambda r: r.user == D)),
    ("where(user='''dave@partner.org''')", _ids(lambda r: r.user == D)),
    ("where(user!=alice@corp.com)", _ids(lambda r: r.user != A)),
    ("where(NOT user=alice@corp.com)", _ids(lambda r: r.user != A)),
    ("where(result=FAILED_MFA)", _ids(lambda r: r.result == "FAILED_MFA")),
    ("where(result=failed_mfa)", _ids(lambda r: False)),
    ('where(result=NOCASE("failed_mfa"))', _ids(lambda r: r.result == "FAILED_MFA")),
    ("where(result!=NOCASE(success))", _ids(lambda r: r.result != "SUCCESS")),
    (
        "where(result = NOCASE('Failed_Bad_Password'))",
        _ids(lambda r: r.result == "FAILED_BAD_PASSWORD"),
    ),
    ("where(error_code=50126)", _ids(lambda r: r.error_code == 50126)),
    ("where(error_code=5.0126e4)", _ids(lambda r: r.error_code == 50126)),
    ("where(error_code=50126.0)", _ids(lambda r: r.error_code == 50126)),
    ("where(error_code>0)", _ids(lambda r: (r.error_code or 0) > 0)),
    ("where(error_code>=50074)", _ids(lambda r: (r.error_code or 0) >= 50074)),
    ("where(error_code<50100)", _ids(lambda r: r.error_code is not None and r.error_code < 50100)),
    ("where(error_code<=0)", _ids(lambda r: r.error_code == 0)),
    ("where(error_code!=50126)", _ids(lambda r: r.error_code != 50126)),
    ("where(error_code > 50000ms)", _ids(lambda r: (r.error_code or 0) > 50000)),
    ("where(error_code = -1)", _ids(lambda r: False)),
    ("where(geoip_latitude > 20)", _ids(lambda r: (r.latitude or 0) > 20)),
    ("where(geoip_latitude = 21)", _ids(lambda r: r.latitude == 21.0)),
    ("where(geoip_latitude < +10.5)", _ids(lambda r: r.latitude is not None and r.latitude < 10.5)),
    ("where(is_interactive=true)", _ids(lambda r: r.interactive is True)),
    ("where(is_interactive=FALSE)", _ids(lambda r: r.interactive is False)),
    ("where(timestamp > 2026-03-02T00:00:00Z)", _ids(lambda r: r.ts > BASE + timedelta(days=1))),
    (
        f"where(timestamp <= {_ms(BASE + timedelta(hours=5))})",
        _ids(lambda r: r.ts <= BASE + timedelta(hours=5)),
    ),
    (
        "where(timestamp >= 2026-03-02T12:00:00+02:00)",
        _ids(lambda r: r.ts >= BASE + timedelta(hours=34)),
    ),
    ("where(source_port > 5)", _ids(lambda r: False)),
    # text operators
    ("where(user CONTAINS corp)", _ids(lambda r: "corp" in r.user)),
    ("where(user CONTAINS CORP)", _ids(lambda r: False)),
    ("where(user ICONTAINS CORP)", _ids(lambda r: "corp" in r.user)),
    ("where(user contains corp)", _ids(lambda r: "corp" in r.user)),
    ("where(user STARTS-WITH al)", _ids(lambda r: r.user.startswith("al"))),
    ("where(user STARTS-WITH Al)", _ids(lambda r: False)),
    ("where(user ISTARTS-WITH AL)", _ids(lambda r: r.user.startswith("al"))),
    ("where(user NOT CONTAINS corp)", _ids(lambda r: "corp" not in r.user)),
    ("where(user NOT ISTARTS-WITH A)", _ids(lambda r: not r.user.startswith("a"))),
    ('where(application CONTAINS " ")', _ids(lambda r: " " in r.application)),
    ("where(application ICONTAINS teams)", _ids(lambda r: "teams" in r.application.lower())),
    (
        "where(user CONTAINS-ANY [alice, dave])",
        _ids(lambda r: "alice" in r.user or "dave" in r.user),
    ),
    (
        "where(user ICONTAINS-ANY [ALICE, DAVE])",
        _ids(lambda r: "alice" in r.user or "dave" in r.user),
    ),
    ("where(user CONTAINS-ALL [a, corp])", _ids(lambda r: "a" in r.user and "corp" in r.user)),
    ("where(user ICONTAINS-ALL [A, CORP])", _ids(lambda r: "a" in r.user and "corp" in r.user)),
    (
        "where(user STARTS-WITH-ANY [bob, carol])",
        _ids(lambda r: r.user.startswith(("bob", "carol"))),
    ),
    (
        "where(user ISTARTS-WITH-ANY [BOB, Carol])",
        _ids(lambda r: r.user.startswith(("bob", "carol"))),
    ),
    ("where(user IN [alice@corp.com, bob@corp.com])", _ids(lambda r: r.user in {A, B})),
    ("where(user IIN [ALICE@CORP.COM, 'Bob@Corp.com'])", _ids(lambda r: r.user in {A, B})),
    ("where(user NOT IN [alice@corp.com])", _ids(lambda r: r.user != A)),
    ("where(result IN [SUCCESS])", _ids(lambda r: r.result == "SUCCESS")),
    ("where(error_code IN [0, 50074])", _ids(lambda r: r.error_code in {0, 50074})),
    ("where(mitre_tactics = CredentialAccess)", _ids(lambda r: "CredentialAccess" in r.tactics)),
    ("where(mitre_tactics CONTAINS Access)", _ids(lambda r: any("Access" in t for t in r.tactics))),
    ("where(mitre_tactics ICONTAINS credential)", _ids(lambda r: "CredentialAccess" in r.tactics)),
    ("where(mitre_tactics IN [InitialAccess])", _ids(lambda r: "InitialAccess" in r.tactics)),
    ("where(mitre_tactics)", _ids(lambda r: bool(r.tactics))),
    # regular expressions
    ("where(user=/^[ab]/)", _ids(lambda r: re.search("^[ab]", r.user) is not None)),
    ("where(user=/^A/i)", _ids(lambda r: r.user.startswith("a"))),
    ("where(user=/^A/)", _ids(lambda r: False)),
    ("where(/Sign-in by carol/)", _ids(lambda r: "Sign-in by carol" in r.raw_text)),
    ("where(/sign-in BY/i)", _ids(lambda r: True)),
    ("where(user NOT = /corp/)", _ids(lambda r: "corp" not in r.user)),
    ("where(/\\//)", _ids(lambda r: "/" in r.raw_text)),
    ('where(/attempt": 1[0-9][,}]/)', _ids(lambda r: 10 <= r.raw["properties"]["attempt"] <= 19)),
    (
        "where(/from (?P<ip>[0-9.]+) result/) groupby(ip)",
        lambda: groups(lambda r: r.source_ip if re.fullmatch(r"[0-9.]+", r.source_ip) else ""),
    ),
    (
        "where(user=/(?P<dom>[a-z]+)\\.(?:com|org)$/) groupby(dom)",
        lambda: groups(lambda r: r.user.split("@")[1].split(".")[0] if r.user else ""),
    ),
    (
        "where(/result (?P<res>[A-Z_]+)/) groupby(res) calculate(count)",
        lambda: groups(lambda r: r.result),
    ),
    # IP ranges
    ("where(source_ip = IP(10.0.0.0/8))", _ids(lambda r: _in(r.source_ip, "10.0.0.0/8"))),
    ("where(source_ip = IP(10.0.0.5))", _ids(lambda r: r.source_ip == "10.0.0.5")),
    ("where(source_ip != IP(10.0.0.0/8))", _ids(lambda r: not _in(r.source_ip, "10.0.0.0/8"))),
    ("where(source_ip NOT = IP(10.0.0.0/8))", _ids(lambda r: not _in(r.source_ip, "10.0.0.0/8"))),
    ("where(source_ip = IP(2001:db8::/32))", _ids(lambda r: _in(r.source_ip, "2001:db8::/32"))),
    (
        "where(source_ip = IP(192.168.0.0/16) OR source_ip = IP(203.0.113.0/24))",
        _ids(lambda r: _in(r.source_ip, "192.168.0.0/16") or _in(r.source_ip, "203.0.113.0/24")),
    ),
    ("where(source_ip = ip(10.1.0.0/16))", _ids(lambda r: _in(r.source_ip, "10.1.0.0/16"))),
    # key presence
    ("where(user)", _ids(lambda r: r.user != "")),
    ("where(NOT user)", _ids(lambda r: r.user == "")),
    ("where(result AND NOT user)", _ids(lambda r: r.user == "")),
    ("where(error_code)", _ids(lambda r: r.error_code is not None)),
    ("where(NOT error_code)", _ids(lambda r: r.error_code is None)),
    ("where(source_json.properties.deviceDetail)", _ids(lambda r: r.id % 10 == 0)),
    ("where(NOT source_json.properties.deviceDetail)", _ids(lambda r: r.id % 10 != 0)),
    ("where(geoip_latitude)", _ids(lambda r: r.latitude is not None)),
    ("where(USER)", _ids(lambda r: r.user != "")),
    # paths into the raw record
    (
        "where(source_json.properties.authenticationRequirement"
        ' = NOCASE("SINGLEFACTORAUTHENTICATION"))',
        _ids(lambda r: r.id % 3 != 0),
    ),
    (
        "where(source_json.properties.authenticationRequirement = multiFactorAuthentication)",
        _ids(lambda r: r.id % 3 == 0),
    ),
    (
        "where(properties.status.errorCode = 50126)",
        _ids(lambda r: _raw(r, "properties", "status", "errorCode") == 50126),
    ),
    ("where(PROPERTIES.STATUS.ERRORCODE = 50126)", _ids(lambda r: r.error_code == 50126)),
    ("where(properties.status.errorCode > 0)", _ids(lambda r: (r.error_code or 0) > 0)),
    ("where(properties.attempt >= 55)", _ids(lambda r: r.id >= 55)),
    ("where(properties.attempt < 3)", _ids(lambda r: r.id < 3)),
    ("where(source_json.properties.attempt = 1e1)", _ids(lambda r: r.id == 10)),
    ("where(properties.riskLevel IN [high, low])", _ids(lambda r: r.id % 3 != 0)),
    (
        "where(properties.deviceDetail.operatingSystem CONTAINS Windows)",
        _ids(lambda r: r.id % 10 == 0),
    ),
    ("where(properties.deviceDetail.isCompliant = true)", _ids(lambda r: r.id % 10 == 0)),
    ("where(source_json.category = SignInLogs)", _ids(lambda r: r.log_name == SIGNIN)),
    ('where(properties.appDisplayName ICONTAINS "office")', _ids(lambda r: r.id % 3 == 2)),
    ('where(properties.userPrincipalName = NOCASE("ALICE@CORP.COM"))', _ids(lambda r: r.user == A)),
    ("where(properties.missing.path = x)", _ids(lambda r: False)),
    ("where(NOT properties.missing.path)", _ids(lambda r: True)),
    # keyword search: case-sensitive, whole tokens
    ("alice", _kw("alice")),
    ("Alice", _kw("Alice")),
    ('"alice@corp.com"', _kw("alice@corp.com")),
    ("corp", _kw("corp")),
    ('"Sign-in by bob"', _kw("Sign-in by bob")),
    ("partner", _kw("partner")),
    ("where(SignInLogs)", _kw("SignInLogs")),
    ('where("Windows 11")', _kw("Windows 11")),
    ("where(FAILED_MFA)", _kw("FAILED_MFA")),
    ("where(FAILED)", _kw("FAILED")),
    ("where(Win)", _ids(lambda r: False)),
    ("where(10)", _kw("10")),
    ('"10.0.0.5"', _kw("10.0.0.5")),
    ('"0.0.5"', _kw("0.0.5")),
    ("where(alice OR dave)", _ids(lambda r: keyword(r, "alice") or keyword(r, "dave"))),
    ("where(alice AND SUCCESS)", _ids(lambda r: keyword(r, "alice") and keyword(r, "SUCCESS"))),
    ("where(NOT alice)", _ids(lambda r: not keyword(r, "alice"))),
    ("where(corp AND NOT carol)", _ids(lambda r: keyword(r, "corp") and not keyword(r, "carol"))),
    ('where("result SUCCESS")', _kw("result SUCCESS")),
    ("where('198.51.100.9')", _kw("198.51.100.9")),
    ('where("user")', _kw("user")),
    ("where(nobody)", _kw("nobody")),
    # boolean logic
    (
        "where(user=alice@corp.com AND result=SUCCESS)",
        _ids(lambda r: r.user == A and r.result == "SUCCESS"),
    ),
    ("where(user=alice@corp.com OR user=bob@corp.com)", _ids(lambda r: r.user in {A, B})),
    (
        "where((user=alice@corp.com OR user=bob@corp.com) AND result!=SUCCESS)",
        _ids(lambda r: r.user in {A, B} and r.result != "SUCCESS"),
    ),
    (
        "where(user=alice@corp.com OR user=bob@corp.com AND result=SUCCESS)",
        _ids(lambda r: r.user == A or (r.user == B and r.result == "SUCCESS")),
    ),
    (
        "where(NOT (result=SUCCESS OR result=FAILED_MFA))",
        _ids(lambda r: r.result not in {"SUCCESS", "FAILED_MFA"}),
    ),
    ("where(NOT NOT user)", _ids(lambda r: r.user != "")),
    (
        "where(result=SUCCESS AND (geoip_country_code=US OR geoip_country_code=GB))",
        _ids(lambda r: r.result == "SUCCESS" and r.country in {"US", "GB"}),
    ),
    (
        "where(error_code > 0 AND error_code < 50100)",
        _ids(lambda r: 0 < (r.error_code or 0) < 50100),
    ),
    ("where(((user)))", _ids(lambda r: r.user != "")),
    # a bare expression is where(expression)
    ("result=FAILED_BAD_PASSWORD", _ids(lambda r: r.result == "FAILED_BAD_PASSWORD")),
    ("user CONTAINS partner", _ids(lambda r: "partner" in r.user)),
    ("alice AND SUCCESS", _ids(lambda r: keyword(r, "alice") and keyword(r, "SUCCESS"))),
    (
        "user=alice@corp.com groupby(result)",
        lambda: groups(lambda r: r.result, lambda r: r.user == A),
    ),
    ("where()", _ids(lambda r: True)),
    # groupby, calculate, having, sort, limit
    (
        "where(result=FAILED_BAD_PASSWORD) groupby(user)",
        lambda: groups(lambda r: r.user, lambda r: r.result == "FAILED_BAD_PASSWORD"),
    ),
    ("groupby(result)", lambda: groups(lambda r: r.result)),
    ("groupby(geoip_country_code) calculate(count)", lambda: groups(lambda r: r.country)),
    (
        "groupby(user) calculate(unique:source_ip)",
        lambda: groups(lambda r: r.user, value=lambda rs: len({r.source_ip for r in rs} - {""})),
    ),
    (
        "groupby(log_name) calculate(count:user)",
        lambda: groups(lambda r: r.log_name, lambda r: r.user != ""),
    ),
    (
        "groupby(user, result)",
        lambda: [[*k, n] for k, n in groups(lambda r: (r.user, r.result) if r.user else "")],
    ),
    ("groupby(user) sort(asc)", lambda: groups(lambda r: r.user, descending=False)),
    ("groupby(user) limit(2)", lambda: groups(lambda r: r.user, limit=2)),
    (
        "groupby(result) having(count > 14)",
        lambda: [g for g in groups(lambda r: r.result) if g[1] > 14],
    ),
    (
        "groupby(user) calculate(sum:error_code)",
        lambda: groups(lambda r: r.user, value=lambda rs: sum(_codes(rs))),
    ),
    (
        "groupby(user) calculate(average:error_code)",
        lambda: groups(lambda r: r.user, value=lambda rs: sum(_codes(rs)) / len(_codes(rs))),
    ),
    (
        "groupby(user) calculate(max:error_code)",
        lambda: groups(lambda r: r.user, value=lambda rs: max(_codes(rs))),
    ),
    (
        "groupby(user) calculate(min:geoip_latitude)",
        lambda: groups(
            lambda r: r.user,
            value=lambda rs: min([r.latitude for r in rs if r.latitude is not None], default=None),
        ),
    ),
    ("calculate(count)", lambda: [[len(ROWS)]]),
    ("calculate(unique:user)", lambda: [[4]]),
    ("calculate(sum:properties.attempt)", lambda: [[sum(_attempts())]]),
    ("calculate(average:properties.attempt)", lambda: [[sum(_attempts()) / len(ROWS)]]),
    ("calculate(median:properties.attempt)", lambda: [[_quantile(_attempts(), 0.5)]]),
    ("calculate(percentile(95):properties.attempt)", lambda: [[_quantile(_attempts(), 0.95)]]),
    ("calculate(pctl90:properties.attempt)", lambda: [[_quantile(_attempts(), 0.9)]]),
    ("calculate(standarddeviation:properties.attempt)", lambda: [[_stddev(_attempts())]]),
    ("calculate(max:geoip_latitude)", lambda: [[max(r.latitude or 0 for r in ROWS)]]),
    ("calculate(bytes)", lambda: [[sum(len(r.raw_text.encode()) for r in ROWS)]]),
    ("where(user=alice@corp.com) calculate(count)", lambda: [[count(lambda r: r.user == A)]]),
    ("where(user=nobody) calculate(sum:error_code)", lambda: [[0]]),
    (
        "groupby(log_name) calculate(bytes)",
        lambda: groups(lambda r: r.log_name, value=lambda rs: sum(len(r.raw_text) for r in rs)),
    ),
    (
        "groupby(user) calculate(count) having(count >= 12)",
        lambda: [g for g in groups(lambda r: r.user) if g[1] >= 12],
    ),
    (
        "groupby(geoip_country_code) calculate(average:geoip_latitude) sort(asc)",
        lambda: groups(
            lambda r: r.country,
            value=lambda rs: sum(r.latitude or 0 for r in rs) / len(rs),
            descending=False,
        ),
    ),
    (
        "where(user) groupby(user) calculate(unique:result)",
        lambda: groups(lambda r: r.user, value=lambda rs: len({r.result for r in rs})),
    ),
    ("groupby(properties.riskLevel)", lambda: groups(lambda r: r.raw["properties"]["riskLevel"])),
    ("groupby(source_json.category) calculate(count)", lambda: groups(lambda r: r.raw["category"])),
    (
        "groupby(user, geoip_country_code, result) limit(5)",
        lambda: [
            [*k, n]
            for k, n in groups(
                lambda r: (r.user, r.country, r.result) if r.user and r.country else "", limit=5
            )
        ],
    ),
    ("groupby(is_interactive)", lambda: groups(lambda r: r.interactive)),
    ("groupby(error_code)", lambda: groups(lambda r: r.error_code)),
    (
        f"where(log_name={SIGNIN!r}) groupby(result) calculate(unique:user) sort(desc) limit(10)",
        lambda: groups(
            lambda r: r.result,
            lambda r: r.log_name == SIGNIN,
            lambda rs: len({r.user for r in rs} - {""}),
        ),
    ),
    (
        "where(result ISTARTS-WITH failed) groupby(source_ip) calculate(unique:user) limit(3)",
        lambda: groups(
            lambda r: r.source_ip,
            lambda r: r.result.startswith("FAILED"),
            lambda rs: len({r.user for r in rs} - {""}),
            limit=3,
        ),
    ),
    (
        "groupby(log_set) calculate(count) sort(asc) limit(1)",
        lambda: groups(lambda r: r.log_set, descending=False, limit=1),
    ),
    # timeslice
    ("timeslice(1d)", lambda: _day_series(lambda r: True)),
    ("timeslice(12h)", lambda: _day_series(lambda r: True, 12)),
    ("timeslice(3)", lambda: _day_series(lambda r: True)),
    ("timeslice(6)", lambda: _day_series(lambda r: True, 12)),
    ("where(result=SUCCESS) timeslice(1d)", lambda: _day_series(lambda r: r.result == "SUCCESS")),
    ("where(alice) timeslice(24h)", lambda: _day_series(lambda r: keyword(r, "alice"))),
    (
        "calculate(unique:user) timeslice(1d)",
        lambda: [
            [t, len({r.user for r in ROWS if r.user and t[:10] == r.ts.strftime("%Y-%m-%d")})]
            for t, _ in _day_series(lambda r: True)
        ],
    ),
    (
        "groupby(log_name) timeslice(1d)",
        lambda: _ranked_series(lambda r: r.log_name, limit=40),
    ),
    (
        "groupby(log_name) timeslice(1d) limit(2)",
        lambda: _ranked_series(lambda r: r.log_name, limit=2),
    ),
    (
        "where(user) groupby(user) timeslice(12h) limit(1)",
        lambda: _ranked_series(lambda r: r.user, lambda r: r.user != "", limit=1, width_h=12),
    ),
    (
        "calculate(max:properties.attempt) timeslice(1d)",
        lambda: [
            [
                t,
                max(
                    [a for a in _attempts(_on_day_of(t))],
                    default=None,
                ),
            ]
            for t, _ in _day_series(lambda r: True)
        ],
    ),
    (
        "groupby(user) having(count > 6) timeslice(1d)",
        lambda: sorted(
            [t, user, n]
            for user in {r.user for r in ROWS if r.user}
            for t, n in _day_series(_of_user(user))
            if n > 6
        ),
    ),
    # LIKE's wildcards in an ISTARTS-WITH value are literal characters
    ('where(user ISTARTS-WITH "ALICE_")', _ids(lambda r: r.user.lower().startswith("alice_"))),
    ('where(user ISTARTS-WITH "%corp")', _ids(lambda r: r.user.lower().startswith("%corp"))),
    ('where(user ISTARTS-WITH "ALICE@")', _ids(lambda r: r.user.lower().startswith("alice@"))),
    # queries written for InsightIDR: unknown keys read the raw record, InsightIDR's key
    # names, array positions, implicit AND, binary NOT, (?<name>...) groups
    ("RiskLevel = high", _ids(lambda r: r.raw["properties"]["riskLevel"] == "high")),
    ("where(MESSAGE ICONTAINS nobody)", _ids(lambda r: "nobody" in r.raw["message"].lower())),
    ("where(attempt > 55)", _ids(lambda r: r.raw["properties"]["attempt"] > 55)),
    ("groupby(riskLevel)", lambda: groups(lambda r: r.raw["properties"]["riskLevel"])),
    (
        'where(properties.appliedConditionalAccessPolicies.0.displayName = "Require MFA")',
        _ids(lambda r: r.id % 8 == 0),
    ),
    (
        "where(properties.appliedConditionalAccessPolicies.1.result = notApplied)",
        _ids(lambda r: r.id % 4 == 0),
    ),
    ("where(properties.appliedConditionalAccessPolicies.2.result)", _ids(lambda r: False)),
    ("where(source_user = alice@corp.com)", _ids(lambda r: r.user == A)),
    ("where(target_account = alice@corp.com)", _ids(lambda r: False)),
    ("alice SUCCESS", _ids(lambda r: keyword(r, "alice") and keyword(r, "SUCCESS"))),
    ("alice NOT SUCCESS", _ids(lambda r: keyword(r, "alice") and not keyword(r, "SUCCESS"))),
    (
        "where(user = bob@corp.com NOT result = SUCCESS)",
        _ids(lambda r: r.user == B and r.result != "SUCCESS"),
    ),
    (
        r"/by (?<who>[a-z]+)@/ groupby(who)",
        lambda: groups(lambda r: (re.search(r"by ([a-z]+)@", r.raw["message"]) or [""] * 2)[1]),
    ),
    (
        "calculate(percentile(90:attempt))",
        lambda: [[_quantile([float(r.raw["properties"]["attempt"]) for r in ROWS], 0.9)]],
    ),
    # sort and limit of events, select
    ("where(user=alice@corp.com) sort(asc)", lambda: oldest(lambda r: r.user == A)),
    ("where(user) limit(5)", lambda: newest(lambda r: r.user != "", limit=5)),
    ("where(user) sort(asc) limit(3)", lambda: oldest(lambda r: r.user != "", limit=3)),
    (f"where(log_name = {ACTIVITY!r}) sort(desc)", _ids(lambda r: r.log_name == ACTIVITY)),
    ("limit(2)", lambda: newest(lambda r: True, limit=2)),
    ("sort(asc) limit(1)", lambda: oldest(lambda r: True, limit=1)),
]


def _normalize(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    return value


def _answer(store: EmbeddedStore, query: str) -> Any:
    result = search(store, SearchRequest(query=query, start=WINDOW[0], end=WINDOW[1]), now=NOW)
    if result.kind == "events":
        return [event["source_offset"] for event in result.events]
    return _normalize(result.rows)


def test_there_are_at_least_150_cases() -> None:
    assert len(CASES) >= 150
    assert len({q for q, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[q for q, _ in CASES])
def test_query_answers_as_the_oracle(store: EmbeddedStore, query: str, expected: Expected) -> None:
    assert _answer(store, query) == _normalize(expected())
