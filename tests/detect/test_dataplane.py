"""Data-plane baseline rules: first readers of secrets (and mail, files), SAS from outside.

The baselines are fed by the engine from the data-plane events themselves. Findings depend
on event time only: any arrival order ends with what the definition says, and a late,
earlier event withdraws or raises what it shows untrue or true.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hubsight.detect.alerts import Alert
from hubsight.detect.base import EventRef, Rule, example_event
from hubsight.detect.dataplane import network, sighting
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.rules.dataplane import (
    FirstSeenConfig,
    NewSecretReader,
    SasConfig,
    SasFromOutside,
)
from hubsight.detect.rules.signals import signin
from hubsight.errors import ConfigError
from hubsight.parsing.event import Event, LogSet

# Baselines answer exactly for horizons longer than two latenesses (see ``baseline``): the
# random-order tests keep to that, with late events up to the lateness behind.
HORIZON = timedelta(minutes=100)
LATENESS = timedelta(minutes=20)
VAULT_URL = "https://kv-prod.vault.azure.net/secrets/db/1"


def _secret_get(minute: float, who: str, vault: str = "kv-prod", **fields: Any) -> Event:
    return example_event(
        LogSet.CLOUD_SERVICE_ACTIVITY,
        minute,
        category="AuditEvent",
        operation="SecretGet",
        result=fields.pop("result", "SUCCESS"),
        target_resource=vault,
        user=who,
        source_ip="52.174.3.10",
        **fields,
    )


def _sas(minute: float, ip: str, **fields: Any) -> Event:
    return example_event(
        LogSet.FILE_ACCESS_ACTIVITY,
        minute,
        category="StorageRead",
        operation="GetBlob",
        result="SUCCESS",
        auth_type=fields.pop("auth_type", "SAS"),
        target_resource="stcontoso",
        source_ip=ip,
        **fields,
    )


def _numbered(events: Sequence[Event]) -> list[Event]:
    for offset, event in enumerate(events):
        event.source_offset = offset
    return list(events)


def _deliver(
    rule: Rule[Any],
    batches: Sequence[Sequence[Event]],
    *,
    horizon: timedelta = HORIZON,
    learning: timedelta = timedelta(0),
    path: Path | None = None,
) -> dict[str, Alert]:
    """The alerts left at the end, by dedup key (restarting halfway when ``path`` is given)."""
    options = EngineOptions(
        learning=learning, baseline_horizon=horizon, lateness=LATENESS, persist=path is not None
    )

    def engine() -> DetectionEngine:
        db = DetectDB(path / "detect.sqlite3") if path else DetectDB(Path(":memory:"))
        return DetectionEngine(db, [rule], options=options)

    running = engine()
    final: dict[str, Alert] = {}
    for number, batch in enumerate(batches):
        if path is not None and number == len(batches) // 2:
            running.close()
            running = engine()
        final.update((a.dedup_key, a) for a in running.process(batch))
        final = {k: a for k, a in final.items() if a.id not in running.withdrawn}
    running.close()
    return final


def _cited(alerts: dict[str, Alert]) -> set[EventRef]:
    return {ref for alert in alerts.values() for ref in alert.evidence}


def _arrivals(rng: random.Random, events: list[Event]) -> list[list[Event]]:
    """Batches of ``events`` each up to the lateness behind its place in event time."""
    late = LATENESS.total_seconds() * 0.99
    order = sorted(events, key=lambda e: e.timestamp.timestamp() + rng.uniform(0, late))
    batches, start = [], 0
    while start < len(order):
        size = rng.randint(1, 3)
        batches.append(order[start : start + size])
        start += size
    return batches


def _first_readers(events: Sequence[Event], horizon: float) -> set[EventRef]:
    """The definition: a read whose identity did not read in the horizon before it, while some
    identity did (the vault has history)."""
    cited = set()
    for event in events:
        ts = event.timestamp.timestamp()
        before = [e for e in events if ts - horizon <= e.timestamp.timestamp() < ts]
        if before and not any(e.user == event.user for e in before):
            cited.add(EventRef.of(event))
    return cited


@pytest.mark.parametrize("seed", range(30))
def test_first_secret_readers_are_the_same_in_any_arrival_order(seed: int) -> None:
    rng = random.Random(seed)
    people = ["ann@contoso.com", "bob@contoso.com", "eve@contoso.com"]
    # Reads spread over hours, with gaps around the horizon.
    events = _numbered(
        [
            _secret_get(round(rng.uniform(0, 400), 3), rng.choice(people))
            for _ in range(rng.randint(3, 12))
        ]
    )
    rule = NewSecretReader(FirstSeenConfig(dedup_minutes=1))
    in_order = _deliver(rule, [[e] for e in sorted(events, key=lambda e: e.timestamp)])
    late = _deliver(rule, _arrivals(rng, events))

    assert _cited(in_order) == _first_readers(events, HORIZON.total_seconds())
    assert _cited(late) == _cited(in_order)


def test_a_late_earlier_read_withdraws_the_new_reader_alert(tmp_path: Path) -> None:
    ann, bob, bob_earlier = _numbered(
        [
            _secret_get(0, "ann@contoso.com"),
            _secret_get(40, "bob@contoso.com"),
            _secret_get(25, "bob@contoso.com"),
        ]
    )
    rule = NewSecretReader(FirstSeenConfig())
    raised = _deliver(rule, [[ann], [bob]], horizon=timedelta(days=90))
    assert _cited(raised) == {EventRef.of(bob)}
    (alert,) = raised.values()
    assert alert.user == "bob@contoso.com"
    assert alert.title == "bob@contoso.com read a secret of key vault kv-prod for the first time"
    assert alert.baseline == (
        "identities reading secrets in 90 days (1): ann@contoso.com; now: bob@contoso.com"
    )
    # Bob's earlier read arrives last (across a restart): his read at 25 is the first one.
    final = _deliver(rule, [[ann], [bob], [bob_earlier]], path=tmp_path, horizon=timedelta(days=90))
    assert _cited(final) == {EventRef.of(bob_earlier)}


def test_a_read_later_than_the_lateness_is_not_judged() -> None:
    # What the baselines knew of times that far back may be forgotten: Bob's read arriving
    # 90 minutes late (the lateness is 20) raises nothing, though in order it would.
    ann, eve, bob = _numbered(
        [
            _secret_get(0, "ann@contoso.com"),
            _secret_get(100, "ann@contoso.com"),
            _secret_get(10, "bob@contoso.com"),
        ]
    )
    rule = NewSecretReader(FirstSeenConfig())
    assert _cited(_deliver(rule, [[ann, bob, eve]])) == {EventRef.of(bob)}
    assert _deliver(rule, [[ann], [eve], [bob]]) == {}


def test_only_successful_secret_gets_of_the_same_vault_teach_it() -> None:
    events = _numbered(
        [
            _secret_get(0, "ann@contoso.com"),
            # A refused read and a read of another vault do not make Bob a known reader...
            _secret_get(10, "bob@contoso.com", result="FAILED"),
            _secret_get(20, "bob@contoso.com", vault="kv-other"),
            _secret_get(30, "bob@contoso.com"),
        ]
    )
    rule = NewSecretReader(FirstSeenConfig())
    assert _cited(_deliver(rule, [events])) == {EventRef.of(events[3])}


@pytest.mark.parametrize(
    ("minutes_after_start", "fires"), [(7 * 1440 - 1, False), (7 * 1440 + 1, True)]
)
def test_first_readers_are_silent_in_the_learning_period(
    minutes_after_start: float, fires: bool
) -> None:
    events = _numbered(
        [
            _secret_get(0, "ann@contoso.com"),
            _secret_get(minutes_after_start - 5, "ann@contoso.com"),
            _secret_get(minutes_after_start, "bob@contoso.com"),
        ]
    )
    rule = NewSecretReader(FirstSeenConfig())
    alerts = _deliver(rule, [events], horizon=timedelta(days=90), learning=timedelta(days=7))
    assert bool(alerts) is fires


@pytest.mark.parametrize(
    ("uri", "subject"),
    [
        ("https://graph.microsoft.com/v1.0/me/messages?$top=5", "data:mail"),
        ("https://graph.microsoft.com/beta/users/ann@contoso.com/mailFolders/inbox", "data:mail"),
        ("https://graph.microsoft.com/v1.0/me/mailFolders('Inbox')/messages", "data:mail"),
        ("https://graph.microsoft.com/v1.0/drives/b!x/items/01AB/content", "data:files:m365"),
        ("https://graph.microsoft.com/v1.0/me/drive/root:/a/b.docx:/content", "data:files:m365"),
        ("https://graph.microsoft.com/v1.0/users/ann@contoso.com", None),
        ("https://graph.microsoft.com/v1.0/drives/b!x/items/01AB", None),
        ("https://graph.microsoft.com/v1.0/me/messagesX", None),
    ],
)
def test_graph_requests_read_mail_or_files_by_their_path(uri: str, subject: str | None) -> None:
    event = example_event(
        LogSet.CLOUD_SERVICE_ACTIVITY,
        category="MicrosoftGraphActivityLogs",
        result="SUCCESS",
        http_method="GET",
        url=uri,
        application_id="7c6b5a49-3827-4160-9f8e-7d6c5b4a3928",
    )
    seen = sighting(event)
    assert (seen.subject if seen else None) == subject


def test_baselines_left_empty_are_deleted(tmp_path: Path) -> None:
    # A network signed in from once, then three days of silence: with a 100-minute horizon it
    # is forgotten, and its baseline goes from memory and from the database.
    first, later = _numbered([signin(0, ip="81.2.69.160"), signin(3 * 1440, ip="198.51.100.1")])
    rule = SasFromOutside(SasConfig())
    _deliver(rule, [[first], [later]], path=tmp_path)
    db = DetectDB(tmp_path / "detect.sqlite3")
    subjects = {row["subject"] for row in db.rows("SELECT subject FROM baselines")}
    db.close()
    assert "data:net:81.2.69.0/24" not in subjects
    assert {"data:net:198.51.100.0/24", "data:tenant"} <= subjects


def test_networks_are_slash_24_and_slash_48() -> None:
    assert network("81.2.69.160") == "81.2.69.0/24"
    assert network("2001:db8:4006:80b::200e") == "2001:db8:4006::/48"


def _sas_case(rng: random.Random) -> list[Event]:
    nets = ["81.2.69.", "81.2.70.", "198.51.100."]
    events: list[Event] = []
    for _ in range(rng.randint(3, 10)):
        minute = round(rng.uniform(0, 400), 3)
        ip = rng.choice(nets) + str(rng.randint(1, 254))
        if rng.random() < 0.4:
            events.append(signin(minute, ip=ip))
        else:
            events.append(_sas(minute, ip))
    return _numbered(events)


def _outside(events: Sequence[Event], horizon: float) -> set[EventRef]:
    """The definition: a SAS request from a network no sign-in came from in the horizon before
    it, while some sign-in did (the tenant's addresses are known)."""
    cited = set()
    for event in events:
        if event.log_set is not LogSet.FILE_ACCESS_ACTIVITY:
            continue
        ts = event.timestamp.timestamp()
        before = [
            network(e.source_ip or "")
            for e in events
            if e.log_set is LogSet.INGRESS_AUTHENTICATION
            and ts - horizon <= e.timestamp.timestamp() < ts
        ]
        if before and network(event.source_ip or "") not in before:
            cited.add(EventRef.of(event))
    return cited


@pytest.mark.parametrize("seed", range(30))
def test_sas_from_outside_is_the_same_in_any_arrival_order(seed: int) -> None:
    rng = random.Random(seed)
    events = _sas_case(rng)
    rule = SasFromOutside(SasConfig(dedup_minutes=1))
    in_order = _deliver(rule, [[e] for e in sorted(events, key=lambda e: e.timestamp)])
    late = _deliver(rule, _arrivals(rng, events))

    assert _cited(in_order) == _outside(events, HORIZON.total_seconds())
    assert _cited(late) == _cited(in_order)


def test_a_late_sign_in_from_the_network_withdraws_the_sas_alert() -> None:
    home, request, late = _numbered(
        [signin(0, ip="81.2.69.160"), _sas(30, "198.51.100.7"), signin(20, ip="198.51.100.99")]
    )
    rule = SasFromOutside(SasConfig())
    (alert,) = _deliver(rule, [[home], [request]]).values()
    assert alert.title == "Storage account stcontoso accessed with a SAS token from 198.51.100.7"
    assert alert.source_ip == "198.51.100.7"
    assert _deliver(rule, [[home], [request], [late]]) == {}


def test_configured_tenant_networks_are_inside_and_say_the_tenant_is_known() -> None:
    inside, outside = _numbered([_sas(0, "203.0.113.77"), _sas(1, "198.51.100.7")])
    rule = SasFromOutside(SasConfig(tenant_networks=("203.0.113.0/24",)))
    # No sign-in at all: the configured networks alone say what the tenant's addresses are.
    assert _cited(_deliver(rule, [[inside, outside]])) == {EventRef.of(outside)}


def test_a_bad_tenant_network_is_a_config_error() -> None:
    rule = SasFromOutside(SasConfig(tenant_networks=("203.0.113.0/33",)))
    with pytest.raises(ConfigError, match="tenant_networks"):
        rule.config.configured("203.0.113.1")
