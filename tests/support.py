"""Plain helpers for tests: planted secrets, topics, producing, sources and a running service."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

import msgspec
from argon2 import PasswordHasher
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hubsight.collector import CollectorSettings, StoredHook
from hubsight.parsing.base import ParserRegistry
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.pipeline import EmptyRegistry
from hubsight.service import SOCKET_FILE, Service
from hubsight.sources.config import EventHubsProfile, SourceConfig, make_source
from hubsight.store import retention
from hubsight.store.base import EventStore, Offsets
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore
from hubsight.store.engine_memory import EngineMemory

# Cheap argon2 parameters keep the tests fast; production uses argon2-cffi's defaults.
FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Terminal(io.StringIO):
    """What a program printed on a terminal (``isatty`` is true), as text."""

    def isatty(self) -> bool:
        """A terminal: what a program prints only there is printed."""
        return True


class PassingStore:
    """An ``EventStore`` that passes every call to ``inner``: a test overrides the calls it
    changes (a store that fails, waits or counts)."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner

    def write(self, events: Sequence[Event]) -> None:
        self.inner.write(events)

    def stored_offsets(self, log_name: str) -> Offsets:
        return self.inner.stored_offsets(log_name)

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.inner.select(sql, params)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.inner.execute(sql, params)

    def check_backup(self) -> None:
        self.inner.check_backup()

    def backup(self, target: Path) -> None:
        self.inner.backup(target)

    def memory(self) -> EngineMemory | None:
        return self.inner.memory()

    def close(self) -> None:
        self.inner.close()


class Window(TypedDict):
    """A search's time window, passed to ``SearchRequest`` as keywords."""

    start: str
    end: str


class Place(TypedDict):
    """Where a sign-in comes from, as ``hubsight.detect.rules.signals.signin``'s keywords."""

    country: str
    lat: float
    lon: float
    ip: str


LAGOS: Place = {"country": "NG", "lat": 6.45, "lon": 3.39, "ip": "102.89.1.1"}


class Clock:
    """A settable wall clock (epoch seconds) for the user store."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


PLANTED_KEY = "PLANTEDsecretKEY0123456789abcdefghijklmnopqrs="
PLANTED_PASSWORD = "planted-Password-9f8e7d6c"
PLANTED = (PLANTED_KEY, PLANTED_PASSWORD)

# Short timings so that tests wait seconds, not minutes. tansu holds a new group's first join
# for about half the session timeout.
FAST_TUNING = {
    "session_timeout_ms": 6_000,
    "metadata_max_age_ms": 3_000,
    "reconnect_backoff_max_ms": 1_000,
    "socket_timeout_ms": 5_000,
}
FAST_COLLECTOR = CollectorSettings(
    poll_timeout_s=0.2, no_data_after_s=3.0, backoff_initial_s=0.5, backoff_max_s=2.0
)


def connection_string(host: str = "contoso-logs.servicebus.windows.net", entity: str = "") -> str:
    """An Event Hubs connection string carrying the planted key."""
    text = (
        f"Endpoint=sb://{host}/;SharedAccessKeyName=hubsight-listen;SharedAccessKey={PLANTED_KEY}"
    )
    return f"{text};EntityPath={entity}" if entity else text


def index_counted_batches(start: datetime) -> tuple[list[Event], list[Event]]:
    """Two batches that ClickHouse 26.9 counted partly twice over ``start`` to three days on.

    The first is one part of three granules (~3 KB events, split by the granule's 10 MB): the
    second and third hold one log set's events only, so the primary key shows them wholly
    inside the range and ClickHouse counted them from the index, then read that part again
    from the ``by_user`` projection (cheaper than the second part's granules). Each batch has
    one event past the range, so no part is counted whole. 11,999 of 12,001 events lie in it.
    """
    pad = "x" * 3000

    def event(n: int, at: datetime, log_set: LogSet) -> Event:
        return Event(
            timestamp=at,
            log_set=log_set,
            log_name="azure",
            user=f"u{n % 40}@contoso.com",
            # A JSON string (the record's base64), as these batches were measured with.
            raw=msgspec.Raw(msgspec.json.encode(f'{{"n": {n}, "pad": "{pad}"}}'.encode())),
            source_topic="t",
            source_partition=0,
            source_offset=n,
        )

    beyond = start + timedelta(days=3, hours=23)
    first = [
        event(n, start + timedelta(seconds=n), LogSet.CLOUD_SERVICE_ACTIVITY) for n in range(2000)
    ]
    first.append(event(2000, beyond, LogSet.CLOUD_SERVICE_ACTIVITY))
    first += [
        event(n, start + timedelta(seconds=n), LogSet.SSO_AUTHENTICATION) for n in range(2001, 7001)
    ]
    sets = [LogSet.CLOUD_SERVICE_ACTIVITY, LogSet.FIREWALL_ACTIVITY, LogSet.SSO_AUTHENTICATION]
    second = [event(7001, beyond, sets[0])]
    second += [event(n, start + timedelta(seconds=n), sets[n % 3]) for n in range(7002, 12001)]
    return first, second


def hubsight_process(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``hubsight --data-dir DATA_DIR ARGS`` as an operator does, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "hubsight", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_no_secret(text: str | bytes) -> None:
    """Fail if any planted secret appears in ``text``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for secret in PLANTED:
        assert secret not in text, "a planted secret leaked into output"


def create_topic(bootstrap: str, partitions: int = 4, name: str | None = None) -> str:
    """A new topic with a unique name."""
    topic = name or f"t-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions)])[topic].result(timeout=30)
    return topic


def produce(
    bootstrap: str, topic: str, bodies: Iterable[bytes], partitions: int | None = None
) -> int:
    """Produce ``bodies`` (round-robin over ``partitions`` when given); returns how many."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "message.max.bytes": 2_000_000}
    )
    count = 0
    for index, body in enumerate(bodies):
        if partitions:
            producer.produce(topic, body, partition=index % partitions)
        else:
            producer.produce(topic, body)
        count += 1
        if count % 500 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} messages were not delivered"
    return count


def kafka_source(name: str, bootstrap: str, topic: str, **overrides: Any) -> SourceConfig:
    """A Kafka-profile source with test timings; ``profile`` keys may be overridden."""
    profile = {"kind": "kafka", "bootstrap": bootstrap, **overrides.pop("profile", {})}
    data = {
        "name": name,
        "profile": profile,
        "topics": [topic],
        "keep_unparsed": True,
        "tuning": FAST_TUNING,
        # A group of its own: a shared group would make every test wait for the rebalances of
        # the members other tests left behind.
        "consumer_group": f"hubsight-{uuid.uuid4().hex[:8]}",
        **overrides,
    }
    return make_source(data)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def serving(
    data_dir: Path,
    *sources: SourceConfig,
    settings: CollectorSettings = FAST_COLLECTOR,
    registry: ParserRegistry | None = None,
    on_stored: StoredHook | None = None,
) -> Iterator[Service]:
    """A running service (collectors + health) over an embedded store in ``data_dir``; records
    stay unparsed unless a parser ``registry`` is given."""
    store = EmbeddedStore(data_dir)
    try:
        catalog = Catalog(data_dir)
        # Tests replay simulated tenants dated months back: the default retention (90 days)
        # would expire them at the store's next merge, under the test's feet.
        for log_set in LogSet:
            catalog.set_retention(log_set.value, retention.MAX_DAYS)
        for source in sources:
            catalog.add(source)
        service = Service(
            data_dir,
            store,
            catalog,
            registry=registry or EmptyRegistry(),
            settings=settings,
            on_stored=on_stored,
        )
        stop = threading.Event()
        thread = threading.Thread(target=service.serve, args=(stop, 0.2))
        thread.start()
        try:
            yield service
        finally:
            stop.set()
            thread.join(timeout=60)
    finally:
        store.close()


def service_of(client: TestClient) -> Service:
    """The service behind a test client of the API (``create_app`` keeps it in the app's state)."""
    app = client.app
    assert isinstance(app, FastAPI)
    service = app.state.service
    assert isinstance(service, Service)
    return service


def connection_string_of(source: SourceConfig) -> str:
    """The connection string an Event Hubs source keeps, in clear."""
    profile = source.profile
    assert isinstance(profile, EventHubsProfile)
    return profile.connection_string.get_secret_value()


def stored_count(service: Service, log_name: str) -> int:
    """Events stored under ``log_name``."""
    rows = service.store.select(
        "SELECT count() AS n FROM events WHERE log_name = {n:String}", {"n": log_name}
    )
    return int(rows[0]["n"])


def state_of(service: Service, name: str) -> dict[str, Any]:
    """The live health snapshot of one source."""
    health = service.health.get(name)
    return health.snapshot() if health else {}


@contextmanager
def hubsight_running(data_dir: Path) -> Iterator[None]:
    """``hubsight run --no-web`` in its own process, serving its local socket, until the block
    ends; it must then stop cleanly on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hubsight", "--data-dir", str(data_dir), "run", "--no-web"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: (data_dir / SOCKET_FILE).exists(), 120, "hubsight run to serve")
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
