"""``hubsight run`` as a real process: SIGKILL at random points, SIGTERM, two in one group."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from hubsight.detect.alerts import AlertFilter, AlertStore
from hubsight.detect.db import DetectDB
from hubsight.devbroker import LocalBroker
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore

from tests.support import assert_no_secret, hubsight_process, kafka_source, produce, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DATA = Path(__file__).parent.parent / "data" / "azure"


def _bodies(first: int, messages: int, per_message: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "records": [
                    {"category": "AuditLogs", "seq": first + m * per_message + i, "pad": "y" * 200}
                    for i in range(per_message)
                ]
            }
        ).encode()
        for m in range(messages)
    ]


@contextmanager
def _run(data_dir: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hubsight", "--data-dir", str(data_dir), "run", "--no-web"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _persisted(data_dir: Path, name: str) -> dict[str, Any]:
    health = Catalog(data_dir).load_health()
    return health[name][0] if name in health else {}


def _stored(data_dir: Path, name: str) -> int:
    return int(_persisted(data_dir, name).get("events_stored", 0))


def _stored_beyond(data_dir: Path, before: int) -> Callable[[], bool]:
    """Whether the collector of ``data_dir`` has stored more than ``before`` events."""
    return lambda: _stored(data_dir, "azure") > before


def _partitions_assigned(data_dir: Path, count: int) -> Callable[[], bool]:
    """Whether the collector of ``data_dir`` reports lag for ``count`` partitions."""
    return lambda: len(_persisted(data_dir, "azure").get("lag", [])) == count


def _seqs(data_dir: Path, log_name: str) -> list[int]:
    store = EmbeddedStore(data_dir)
    try:
        rows = store.select(
            "SELECT JSONExtractInt(raw, 'seq') AS seq FROM events WHERE log_name = {n:String}",
            {"n": log_name},
        )
    finally:
        store.close()
    return [int(r["seq"]) for r in rows]


def test_sigkill_ten_times_while_consuming_loses_and_duplicates_nothing(
    broker: LocalBroker, topic: str, data_dir: Path, tmp_path: Path
) -> None:
    Catalog(data_dir).add(kafka_source("azure", broker.bootstrap, topic))
    per_message = 25
    produced = {"messages": 0}
    stop = threading.Event()

    def keep_producing() -> None:
        while not stop.is_set():
            first = produced["messages"] * per_message
            # 250 events every half second or so: events flow at every kill. More made the
            # backlog grow with how slowly the machine restarts the process (628,000 events at
            # load 20, not caught up within the final wait).
            produce(broker.bootstrap, topic, _bodies(first, 10, per_message), partitions=4)
            produced["messages"] += 10
            stop.wait(0.5)

    producer = threading.Thread(target=keep_producing)
    producer.start()
    rng = random.Random(20261127)
    kills_while_flowing = 0
    log = tmp_path / "run.log"
    try:
        for _ in range(10):
            before = _stored(data_dir, "azure")
            with _run(data_dir, log) as process:
                # Kill once events flow again, at a random moment after that. A restart (chdb's
                # start, the group join) took over 60 s on a loaded 2-core machine; the wait only
                # bounds a hang, the counts below are what the test checks.
                wait_until(_stored_beyond(data_dir, before), 150, "progress")
                time.sleep(rng.uniform(0.0, 2.0))
                process.send_signal(signal.SIGKILL)
                process.wait()
            kills_while_flowing += 1
    finally:
        stop.set()
        producer.join()
    total = produced["messages"] * per_message
    with _run(data_dir, log) as process:
        wait_until(lambda: _stored(data_dir, "azure") >= total, 120, f"{total} events")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    seqs = _seqs(data_dir, "azure")
    assert len(seqs) == total, "events lost or duplicated"
    assert sorted(seqs) == list(range(total))
    assert kills_while_flowing == 10
    assert_no_secret(log.read_bytes())


def test_two_collectors_in_one_group_split_the_partitions_and_store_everything_once(
    broker: LocalBroker, topic: str, tmp_path: Path
) -> None:
    dirs = [tmp_path / "one", tmp_path / "two"]
    for data_dir in dirs:
        Catalog(data_dir).add(
            kafka_source("azure", broker.bootstrap, topic, consumer_group="shared-group")
        )
    with (
        _run(dirs[0], tmp_path / "one.log") as first,
        _run(dirs[1], tmp_path / "two.log") as second,
    ):
        for data_dir in dirs:
            wait_until(
                _partitions_assigned(data_dir, 2),
                90,
                "two partitions assigned to each collector",
            )
        produce(broker.bootstrap, topic, _bodies(0, 1_000, 40), partitions=4)
        wait_until(lambda: sum(_stored(d, "azure") for d in dirs) >= 40_000, 120, "40,000 events")
        for process in (first, second):
            process.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
        assert second.wait(timeout=60) == 0
    one, two = (_seqs(d, "azure") for d in dirs)
    assert one
    assert two
    assert not set(one) & set(two)
    assert sorted(one + two) == list(range(40_000))
    # A clean stop commits everything it stored: 250 messages went to each partition.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "shared-group"})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
    finally:
        consumer.close()
    assert [tp.offset for tp in committed] == [250, 250, 250, 250]


def test_read_commands_work_while_run_holds_the_store(
    broker: LocalBroker, topic: str, data_dir: Path, tmp_path: Path
) -> None:
    Catalog(data_dir).add(kafka_source("azure", broker.bootstrap, topic))
    produce(broker.bootstrap, topic, _bodies(0, 20, 5), partitions=4)
    with _run(data_dir, tmp_path / "run.log") as process:
        wait_until(lambda: _stored(data_dir, "azure") >= 100, 90, "100 events")
        status = hubsight_process(data_dir, "status", "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["running"] is True
        assert report["sources"][0]["state"] == "running"
        assert report["sources"][0]["events_stored"] == 100
        listed = hubsight_process(data_dir, "source", "list")
        assert "azure" in listed.stdout
        found = hubsight_process(
            data_dir, "search", "where(category=AuditLogs) calculate(count)", "--last", "1d",
            "--format", "json",
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout) == {"kind": "table", "columns": ["count"], "rows": [[100]]}
        bad = hubsight_process(data_dir, "search", "where(user = )", "--last", "1d")
        assert bad.returncode == 2
        assert "^" in bad.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    after = hubsight_process(
        data_dir, "search", "where(category=AuditLogs) calculate(count)", "--format", "json"
    )
    assert json.loads(after.stdout)["rows"] == [[100]]


def _signins(path: str, user: str, first: datetime, count: int) -> list[bytes]:
    """``count`` copies of a sample sign-in record of ``path``, for ``user``, a minute apart."""
    sample = json.loads((DATA / path).read_text())
    bodies = []
    for n in range(count):
        record = json.loads(json.dumps(sample))
        properties = record["properties"]
        nested = isinstance(properties, str)
        if nested:
            properties = json.loads(properties)
        at = (first + timedelta(minutes=n)).isoformat()
        properties["userPrincipalName"] = user
        properties["createdDateTime"] = at
        properties["id"] = f"{user}-{n}"
        record["properties"] = json.dumps(properties) if nested else properties
        record["time"] = at
        bodies.append(json.dumps({"records": [record]}).encode())
    return bodies


def _detect_rows(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(data_dir / "detect.sqlite3", timeout=30)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        db.close()


def test_sigkill_between_storing_and_saving_detection_still_alerts_once(
    broker: LocalBroker, topic: str, data_dir: Path, tmp_path: Path
) -> None:
    Catalog(data_dir).add(kafka_source("azure", broker.bootstrap, topic))
    log = tmp_path / "run.log"
    start = datetime.now(UTC) - timedelta(hours=1)
    warm_up = _signins("SignInLogs/success-mfa-push.json", "bob@contoso.com", start, 1)
    attack = _signins(
        "SignInLogs/bad-password-properties-as-string-ip-port.json",
        "alice@contoso.com",
        start + timedelta(minutes=5),
        10,
    )
    with _run(data_dir, log) as process:
        produce(broker.bootstrap, topic, warm_up)
        wait_until(lambda: _detect_rows(data_dir, "SELECT * FROM sources") != [], 150, "detection")
        # Another process holds detect.sqlite3's write lock: detection's save of the next batch
        # waits for it (5 s), fails, and the process dies before any later save.
        holder = sqlite3.connect(data_dir / "detect.sqlite3", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            produce(broker.bootstrap, topic, attack)
            wait_until(lambda: _stored(data_dir, "azure") == 11, 60, "the attack stored")
            process.send_signal(signal.SIGKILL)
            process.wait()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert _detect_rows(data_dir, "SELECT rule_id FROM alerts") == []
    with _run(data_dir, log) as process:
        wait_until(
            lambda: _detect_rows(data_dir, "SELECT rule_id FROM alerts") != [], 150, "the alert"
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    alerts = AlertStore(DetectDB.in_dir(data_dir)).find(AlertFilter(limit=100))
    assert [(a.rule_id, a.user) for a in alerts] == [("auth.brute_force", "alice@contoso.com")]
    # Its ten failures, each counted once.
    assert len(alerts[0].evidence) == 10
    # Read again from the position saved with the warm-up: it, then the attack.
    assert "caught up: 11 stored events read again" in log.read_text()
    assert "1 of them processed already" in log.read_text()


class _Hook(BaseHTTPRequestHandler):
    """A webhook receiver that keeps what it answered; while ``server.hang`` is set it reads a
    request and holds it until ``server.released``, then answers it only if
    ``server.answer_held`` (else the sender waits in the middle of a delivery)."""

    server: _HookServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.server.arrived.set()
        if self.server.hang.is_set():
            self.server.released.wait(120)
            if not self.server.answer_held:
                return
        self.server.answered.append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _HookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.hang, self.arrived, self.released = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )
        self.answered: list[dict[str, object]] = []
        self.answer_held = False


def _hook_for(data_dir: Path) -> _HookServer:
    """A webhook receiver, serving, that ``data_dir``'s detect.toml sends Medium alerts to
    (once each, waiting up to two minutes for an answer)."""
    hook = _HookServer()
    threading.Thread(target=hook.serve_forever, args=(0.05,), daemon=True).start()
    (data_dir / "detect.toml").write_text(
        'learning_days = 0\n[[notify.webhooks]]\nname = "soar"\n'
        f'url = "http://127.0.0.1:{hook.server_address[1]}/hook"\n'
        'severities = ["Medium"]\nretries = 0\ntimeout_seconds = 120\n'
    )
    return hook


def _starts(log: Path) -> int:
    """How many times ``hubsight run`` began collecting, as its log says."""
    lines = log.read_text().splitlines()
    return sum("collecting from" in line and "stopped" not in line for line in lines)


def test_sigkill_while_notifying_sends_the_alert_once_after_the_restart(
    broker: LocalBroker, topic: str, data_dir: Path, tmp_path: Path
) -> None:
    Catalog(data_dir).add(kafka_source("azure", broker.bootstrap, topic))
    log = tmp_path / "run.log"
    hook = _hook_for(data_dir)
    attack = _signins(
        "SignInLogs/bad-password-properties-as-string-ip-port.json",
        "alice@contoso.com",
        datetime.now(UTC) - timedelta(hours=1),
        10,
    )
    try:
        hook.hang.set()
        with _run(data_dir, log) as process:
            produce(broker.bootstrap, topic, attack)
            # The alert is saved; its delivery is under way, unanswered: killed then.
            assert hook.arrived.wait(150), "no notification was sent"
            process.send_signal(signal.SIGKILL)
            process.wait()
        hook.released.set()
        hook.hang.clear()
        assert hook.answered == []
        (alert_id,) = [row[0] for row in _detect_rows(data_dir, "SELECT id FROM alerts")]
        with _run(data_dir, log) as process:
            wait_until(lambda: hook.answered != [], 150, "the notification sent at start")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        # Delivered, so nothing is due; and a third start detects nothing again.
        assert _detect_rows(data_dir, "SELECT * FROM outbox") == []
        with _run(data_dir, log) as process:
            wait_until(lambda: _starts(log) == 3, 150, "the third start collecting")
            time.sleep(2)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
    finally:
        hook.released.set()
        hook.shutdown()
        hook.server_close()
    assert [(body["id"], body["rule_id"]) for body in hook.answered] == [
        (alert_id, "auth.brute_force")
    ]
    assert _detect_rows(data_dir, "SELECT * FROM outbox") == []


def test_a_receiver_holding_a_notification_holds_up_neither_detection_nor_the_shutdown(
    broker: LocalBroker, topic: str, data_dir: Path, tmp_path: Path
) -> None:
    Catalog(data_dir).add(kafka_source("azure", broker.bootstrap, topic))
    log = tmp_path / "run.log"
    hook = _hook_for(data_dir)
    start = datetime.now(UTC) - timedelta(hours=1)
    first, second = (
        _signins(
            "SignInLogs/bad-password-properties-as-string-ip-port.json",
            user,
            start + timedelta(minutes=30 * n),
            10,
        )
        for n, user in enumerate(("alice@contoso.com", "bob@contoso.com"))
    )
    alerts = "SELECT user FROM alerts WHERE rule_id = 'auth.brute_force' ORDER BY created_at"
    try:
        hook.hang.set()
        hook.answer_held = True
        with _run(data_dir, log) as process:
            produce(broker.bootstrap, topic, first)
            assert hook.arrived.wait(150), "no notification was sent"
            # The receiver holds alice's alert: bob's batches are stored and detected all the
            # same (on the collector's thread, which no longer sends).
            produce(broker.bootstrap, topic, second)
            wait_until(lambda: _stored(data_dir, "azure") == 20, 60, "bob's sign-ins stored")
            wait_until(lambda: len(_detect_rows(data_dir, alerts)) == 2, 60, "bob's alert")
            assert hook.answered == []
            # Stopped while the receiver still holds it: after the grace, the delivery in flight
            # is finished (not abandoned, so never sent twice) and bob's is left due.
            process.send_signal(signal.SIGTERM)
            wait_until(lambda: "stopping after the delivery in flight" in log.read_text(), 60,
                       "the shutdown's grace over")  # fmt: skip
            hook.hang.clear()
            hook.released.set()
            assert process.wait(timeout=60) == 0
        assert _detect_rows(data_dir, alerts) == [("alice@contoso.com",), ("bob@contoso.com",)]
        (alice, bob) = [row[0] for row in _detect_rows(data_dir, alerts.replace("user", "id", 1))]
        assert [body["id"] for body in hook.answered] == [alice]
        assert _detect_rows(data_dir, "SELECT alert_id FROM outbox") == [(bob,)]
        assert _detect_rows(data_dir, "SELECT alert_id FROM notified") == [(alice,)]
        with _run(data_dir, log) as process:
            wait_until(lambda: len(hook.answered) == 2, 150, "bob's alert sent at start")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
    finally:
        hook.released.set()
        hook.shutdown()
        hook.server_close()
    assert [body["id"] for body in hook.answered] == [alice, bob]
    assert _detect_rows(data_dir, "SELECT * FROM outbox") == []
