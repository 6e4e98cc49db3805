"""The demo behind ``make run``: a local broker fed with a simulated Azure tenant.

A newcomer without Azure sees the whole path work: broker -> collector -> store -> API. The feed
is ``hubsight simulate``'s live traffic with every attack scenario planted in it.
"""

from __future__ import annotations

import contextlib
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from hubsight.devbroker import LocalBroker
from hubsight.errors import AlreadyExistsError, NotFoundError
from hubsight.simulate import SCENARIOS, stream_messages
from hubsight.sources.config import make_source
from hubsight.store.catalog import Catalog

DEMO_SOURCE = "demo-azure"
DEMO_TOPIC = "insights-operational-logs"
DEMO_PARTITIONS = 4


def start_demo(catalog: Catalog, stop: threading.Event, rate_per_s: float = 20.0) -> LocalBroker:
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
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "message.max.bytes": 2_000_000}
    )
    for body in stream_messages(seed=int(time.time()), rate=rate_per_s, scenarios=SCENARIOS):
        if stop.is_set():
            break
        producer.produce(DEMO_TOPIC, body)
        producer.poll(0)
    producer.flush(5)
