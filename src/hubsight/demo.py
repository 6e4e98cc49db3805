"""The demo behind ``make run``: a local broker fed with Event Hub-shaped messages.

A newcomer without Azure sees the whole path work: broker -> collector -> store -> API. The
feed is a small fixed set of realistic records, re-stamped with the current time, until the
traffic generator (``hubsight simulate``) takes its place.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from hubsight.devbroker import LocalBroker
from hubsight.errors import AlreadyExistsError, NotFoundError
from hubsight.sources.config import make_source
from hubsight.store.catalog import Catalog

DEMO_SOURCE = "demo-azure"
DEMO_TOPIC = "insights-operational-logs"
DEMO_PARTITIONS = 4


def _signin(now: str, user: str, ip: str, country: str, code: int) -> dict[str, object]:
    return {
        "time": now,
        "resourceId": "/tenants/8f6b5c3e-0000-4d2a-9a11-5b3f0c2e7d10/providers/Microsoft.aadiam",
        "operationName": "Sign-in activity",
        "operationVersion": "1.0",
        "category": "SignInLogs",
        "tenantId": "8f6b5c3e-0000-4d2a-9a11-5b3f0c2e7d10",
        "resultType": str(code),
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": ip,
        "correlationId": str(uuid.uuid4()),
        "identity": user.split("@")[0].title(),
        "Level": 4,
        "location": country,
        "properties": {
            "id": str(uuid.uuid4()),
            "createdDateTime": now,
            "userPrincipalName": user,
            "appDisplayName": "Office 365 Exchange Online",
            "ipAddress": ip,
            "clientAppUsed": "Browser",
            "status": {"errorCode": code},
            "location": {"city": "Berlin", "countryOrRegion": country},
            "isInteractive": True,
        },
    }


def _admin(now: str, caller: str, operation: str) -> dict[str, object]:
    return {
        "time": now,
        "resourceId": "/SUBSCRIPTIONS/3A1B2C4D-0000-4E5F-8A9B-0C1D2E3F4A5B/RESOURCEGROUPS/"
        "PROD-RG/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/WEB-01",
        "operationName": operation,
        "category": "Administrative",
        "resultType": "Success",
        "resultSignature": "Succeeded.",
        "durationMs": "412",
        "callerIpAddress": "203.0.113.40",
        "correlationId": str(uuid.uuid4()),
        "identity": {"claims": {"name": caller}},
        "level": "Information",
        "properties": {"statusCode": "OK"},
    }


def demo_messages() -> Iterator[bytes]:
    """Endless Event Hub message bodies: sign-ins, a brute force, and admin activity."""
    users = ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"]
    step = 0
    while True:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        records: list[dict[str, object]] = [
            _signin(now, users[step % 3], "198.51.100.7", "DE", 0),
            _signin(now, "bob@contoso.com", "203.0.113.99", "NG", 50126),
            _admin(now, users[step % 3], "MICROSOFT.COMPUTE/VIRTUALMACHINES/START/ACTION"),
        ]
        if step % 5 == 0:
            records.append({"category": "MicrosoftGraphActivityLogs", "time": now})
        step += 1
        yield json.dumps({"records": records}).encode()


def start_demo(catalog: Catalog, stop: threading.Event, rate_per_s: float = 2.0) -> LocalBroker:
    """Start the broker, point the demo source at it, and feed it until ``stop``."""
    broker = LocalBroker().start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(DEMO_TOPIC, DEMO_PARTITIONS)])[DEMO_TOPIC].result(timeout=30)
    config = make_source(
        {
            "name": DEMO_SOURCE,
            "profile": {"kind": "kafka", "bootstrap": broker.bootstrap},
            "topics": [DEMO_TOPIC],
            "keep_unparsed": True,
            "default_domain": "contoso.com",
        }
    )
    try:
        catalog.add(config)
    except AlreadyExistsError:
        # The broker is new on every start (it keeps nothing): follow it to its new port.
        catalog.replace(config)
    thread = threading.Thread(
        target=_feed, args=(broker.bootstrap, stop, rate_per_s), name="demo-feed", daemon=True
    )
    thread.start()
    return broker


def stop_demo(catalog: Catalog, broker: LocalBroker) -> None:
    """Stop the broker; the demo source is disabled so that it does not error while down."""
    broker.stop()
    with contextlib.suppress(NotFoundError):
        catalog.set_enabled(DEMO_SOURCE, False)


def _feed(bootstrap: str, stop: threading.Event, rate_per_s: float) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    for body in demo_messages():
        if stop.wait(1.0 / rate_per_s):
            break
        producer.produce(DEMO_TOPIC, body)
        producer.poll(0)
    producer.flush(5)
