"""/metrics scraped and parsed after real collection, its token rule, and the health probes."""

from __future__ import annotations

import json
import platform
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from hubsight.cli.run_cmd import is_loopback
from hubsight.collector import CollectorSettings
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.notify import Notifier, channel_for
from hubsight.detect.rules.auth_signals import FlowConfig, UnusualAuthFlow
from hubsight.detect.runtime import Detection
from hubsight.detect.state import StateSize
from hubsight.detect.targets import WebhookConfig
from hubsight.errors import StoreError
from hubsight.metrics import Metrics
from hubsight.parsing.registry import default_registry
from hubsight.service import Service
from hubsight.sources.base import PartitionLag
from hubsight.sources.config import make_source
from hubsight.sources.memory import MemoryBroker
from hubsight.store.backends import StoreSettings, open_store
from hubsight.store.catalog import Catalog
from hubsight.store.engine_memory import CACHES, EngineMemory
from hubsight.store.users import UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import ConsoleAuth

from tests.support import FAST_HASH, wait_until

SIGN_IN = Path(__file__).parents[1] / "data/azure/SignInLogs"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def collected(data_dir: Path) -> Iterator[tuple[Service, MemoryBroker]]:
    """A service that collected three messages from two partitions of an in-memory broker."""
    broker = MemoryBroker()
    broker.create_topic("hub", 2)
    sign_in = json.loads((SIGN_IN / "bad-password-properties-as-string-ip-port.json").read_bytes())
    broker.produce("hub", json.dumps({"records": [sign_in]}).encode(), partition=0)
    broker.produce("hub", b'{"records": [{"category": "NoSuchCategory", "n": 1}]}', partition=0)
    # Python's True is repaired to JSON's true.
    broker.produce("hub", b'{"records": [{"category": "NoSuchCategory", "ok": True}]}', partition=1)
    store = open_store(StoreSettings(data_dir=data_dir))
    catalog = Catalog(data_dir)
    catalog.add(
        make_source(
            {
                "name": "azure",
                "profile": {"kind": "kafka", "bootstrap": "memory:9092"},
                "topics": ["hub"],
                "keep_unparsed": True,
            }
        )
    )
    service = Service(
        data_dir,
        store,
        catalog,
        drivers=lambda _config: broker.driver(),
        registry=default_registry(),
        settings=CollectorSettings(poll_timeout_s=0.05, linger_s=0.05),
        on_stored=lambda _events: None,
    )
    stop = threading.Event()
    thread = threading.Thread(target=service.serve, args=(stop, 0.1))
    thread.start()
    try:
        wait_until(
            lambda: broker.committed("hub", 0) == 2 and broker.committed("hub", 1) == 1,
            30,
            "every message committed",
        )
        wait_until(lambda: all(p.lag == 0 for p in service.lags()["azure"]), 10, "lag caught up")
        yield service, broker
    finally:
        stop.set()
        thread.join(timeout=30)
        store.close()


def test_metrics_count_what_was_consumed_stored_unparsed_and_repaired(
    collected: tuple[Service, MemoryBroker],
) -> None:
    service, _broker = collected
    with TestClient(create_app(service)) as client:
        searched = client.post("/api/v1/search", json={"query": "", "last": "3650d"})
        assert searched.status_code == 200, searched.text
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    s = _samples(response.text)
    assert _value(s, "hubsight_messages_consumed_total", source="azure") == 3
    for name in ("hubsight_events_consumed_total", "hubsight_events_stored_total"):
        assert _value(s, name, source="azure", category="SignInLogs") == 1
        assert _value(s, name, source="azure", category="NoSuchCategory") == 2
    assert (
        _value(s, "hubsight_events_unparsed_total", source="azure", category="NoSuchCategory") == 2
    )
    assert (
        _value(s, "hubsight_events_unparsed_total", source="azure", category="SignInLogs") is None
    )
    assert _value(s, "hubsight_events_repaired_total", source="azure", repair="python_literal") == 1
    for partition in ("0", "1"):
        labels = {"source": "azure", "topic": "hub", "partition": partition}
        assert _value(s, "hubsight_source_lag_messages", **labels) == 0
    writes = _value(s, "hubsight_store_write_seconds_count", source="azure")
    assert writes is not None
    assert writes >= 1
    # Every stored batch went to detection (here a hook that does nothing) once.
    assert _value(s, "hubsight_detection_delay_seconds_count") == writes
    assert _value(s, "hubsight_search_seconds_count") == 1


def test_lag_is_exported_per_partition_and_unknown_lag_is_left_out() -> None:
    metrics = Metrics()
    metrics.watch_lag(
        lambda: {
            "azure": [PartitionLag("hub", 0, 5, 12), PartitionLag("hub", 1, None, None)],
            "relay": [PartitionLag("logs", 3, None, 4)],
        }
    )
    s = _samples(metrics.render().decode())
    lag = "hubsight_source_lag_messages"
    assert _value(s, lag, source="azure", topic="hub", partition="0") == 7
    assert _value(s, lag, source="azure", topic="hub", partition="1") is None
    assert _value(s, lag, source="relay", topic="logs", partition="3") == 4


def test_alerts_per_rule_and_failed_notifications_per_channel(tmp_path: Path) -> None:
    (example,) = [e.events[0] for e in UnusualAuthFlow.examples() if e.fires][:1]
    db = DetectDB.in_dir(tmp_path)
    engine = DetectionEngine(
        db, [UnusualAuthFlow(FlowConfig())], options=EngineOptions(learning=timedelta(0))
    )
    # Port 9 on loopback: nothing listens, the delivery fails at once.
    down = WebhookConfig(
        name="down", url=SecretStr("http://127.0.0.1:9/hook"), severities=("Medium",), retries=0
    )
    detection = Detection(engine, Notifier([channel_for(down)], db))
    detection.metrics = Metrics()
    alerts = detection.on_stored([example])
    detection.close()
    rule = alerts[0].rule_id
    s = _samples(detection.metrics.render().decode())
    assert _value(s, "hubsight_alerts_total", rule=rule) == 1
    assert _value(s, "hubsight_notification_failures_total", channel="webhook:down") == 1


@pytest.fixture
def users(data_dir: Path) -> UserStore:
    store = UserStore(data_dir, hasher=FAST_HASH)
    store.create("ana", "analyst passphrase", "analyst")
    return store


def test_metrics_need_a_token_unless_the_console_listens_on_loopback_only(
    service: Service, users: UserStore
) -> None:
    token = users.issue_token("ana", "prometheus")
    guarded = TestClient(create_app(service, auth=ConsoleAuth(users)))
    refused = guarded.get("/metrics")
    assert refused.status_code == 401
    assert "hubsight_" not in refused.text
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = guarded.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200
    assert "hubsight_messages_consumed_total" in scraped.text
    # The probes never need one.
    assert guarded.get("/health/live").json() == {"status": "live"}
    opened = TestClient(create_app(service, auth=ConsoleAuth(users, open_metrics=True)))
    assert opened.get("/metrics").status_code == 200
    # open_metrics opens /metrics only.
    assert opened.get("/api/v1/status").status_code == 401


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),  # noqa: S104 - an address to classify, not to bind
        ("::", False),
        ("10.0.0.5", False),
        ("console.contoso.com", False),
    ],
)
def test_which_listen_addresses_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_ready_once_the_service_loop_runs_and_while_the_store_answers(service: Service) -> None:
    with TestClient(create_app(service)) as client:
        before = client.get("/health/ready")
        assert before.status_code == 503
        assert before.json()["checks"] == {"store": "ok", "service": "not started"}
        service.last_loop = time.monotonic()
        assert client.get("/health/ready").json() == {
            "status": "ready",
            "checks": {"store": "ok", "service": "ok"},
        }
        service.last_loop -= 60
        stuck = client.get("/health/ready")
        assert stuck.status_code == 503
        assert stuck.json()["checks"]["service"].startswith("stuck for 6")
        service.last_loop += 60
        service.store.close()
        closed = client.get("/health/ready")
        assert closed.status_code == 503
        assert closed.json()["checks"]["store"].endswith("the event store is closed")


def test_memory_is_exported_by_part_at_each_scrape(data_dir: Path) -> None:
    store = open_store(StoreSettings(data_dir=data_dir))
    sizes = iter([StateSize(3, 10, 2), StateSize(4, 25, 2)])
    metrics = Metrics()
    metrics.watch_memory(store.memory, lambda: next(sizes))
    try:
        first = _samples(metrics.render().decode())
        second = _samples(metrics.render().decode())
    finally:
        store.close()
    assert _value(first, "hubsight_detection_window_entries") == 10
    assert _value(second, "hubsight_detection_window_entries") == 25
    assert _value(second, "hubsight_detection_windows") == 4
    assert _value(second, "hubsight_detection_baselines") == 2
    allocated = _value(first, "hubsight_engine_memory_bytes", part="allocated")
    resident = _value(first, "hubsight_engine_memory_bytes", part="resident")
    assert allocated is not None
    assert resident is not None
    assert 0 < allocated <= resident
    for cache in CACHES:
        assert _value(first, "hubsight_engine_cache_bytes", cache=cache) is not None
    rss = _value(first, "process_resident_memory_bytes")
    assert rss is not None
    # The engine's resident pages are part of the process's.
    assert resident < rss
    if platform.libc_ver()[0] == "glibc":
        in_use = _value(first, "hubsight_malloc_bytes", state="in_use")
        assert in_use is not None
        assert in_use > 0


def test_memory_without_an_engine_in_process_or_with_one_failing_leaves_its_figures_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def failing() -> EngineMemory:
        raise StoreError("the event store is closed")

    for reader, logged in ((lambda: None, False), (failing, True)):
        metrics = Metrics()
        metrics.watch_memory(reader)
        caplog.clear()
        text = metrics.render().decode()
        s = _samples(text)
        assert "hubsight_engine_memory_bytes" in text
        assert not [k for k in s if k[0].startswith("hubsight_engine_")]
        # Without a state reader there is no detection figure; the rest is exported.
        assert _value(s, "hubsight_detection_window_entries") is None
        assert _value(s, "process_resident_memory_bytes")
        assert ("the event store is closed" in caplog.text) is logged
