"""Where simulated messages go: a file or stdout (one message body per line), a Kafka topic, or
a folder laid out like Azure's storage-account export."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

import msgspec
from confluent_kafka import KafkaError, KafkaException, Producer

from hubsight.errors import HubsightError
from hubsight.simulate.background import TRUNCATED
from hubsight.simulate.engine import MAX_MESSAGE_BYTES, SimMessage
from hubsight.simulate.resources import POSTURE_KINDS


class Sink(Protocol):
    """Takes messages in order; ``close`` returns once every message is written or sent."""

    def send(self, message: SimMessage) -> None:
        """Write or queue one message."""
        ...

    def close(self) -> None:
        """Flush; raise ``HubsightError`` if anything could not be delivered."""
        ...


class LinesSink:
    """Message bodies, one per line, to a binary stream (a file or stdout)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def send(self, message: SimMessage) -> None:
        """Write one body and a newline (bodies are compact JSON: they hold no newline)."""
        self._stream.write(message.body)
        self._stream.write(b"\n")

    def close(self) -> None:
        """Flush the stream (the caller owns it and closes it)."""
        self._stream.flush()


class _Envelope(msgspec.Struct):
    records: list[msgspec.Raw]


class _Where(msgspec.Struct):
    time: str = ""
    resourceId: str = ""  # Azure's spelling
    tenantId: str = ""
    EventTimeString: str = ""  # Event Hubs' OperationalLogs: "1/5/2026 9:00:41 AM +00:00"


_ACTIVITY_LOG = frozenset(
    {"Administrative", "Policy", "Security", "ServiceHealth", "ResourceHealth", "Alert",
     "Autoscale", "Recommendation"}
)  # fmt: skip
_NOT_ARCHIVED = frozenset({"SecurityAlert", TRUNCATED, *POSTURE_KINDS})


def _iso(event_time: str) -> str:
    return datetime.strptime(event_time, "%m/%d/%Y %I:%M:%S %p %z").isoformat()


class ExportSink:
    """Records as a diagnostic setting archives them to a storage account: one JSON record per
    line in ``insights-logs-<category>/.../y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json`` (the Activity
    Log in ``insights-activity-logs``). Defender continuous-export records are not archived this
    way, nor would a relay's truncated records be: both are left out."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._envelope = msgspec.json.Decoder(_Envelope)
        self._where = msgspec.json.Decoder(_Where)
        self.skipped = 0

    def send(self, message: SimMessage) -> None:
        """Append each record of the message to the file of its category and hour."""
        if message.category in _NOT_ARCHIVED:
            self.skipped += message.records
            return
        lines: dict[Path, list[bytes]] = {}
        for raw in self._envelope.decode(message.body).records:
            record = bytes(raw)
            lines.setdefault(self._path(message.category, self._where.decode(record)), []).append(
                record
            )
        for path, records in lines.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as handle:
                handle.write(b"\n".join(records) + b"\n")

    def _path(self, category: str, where: _Where) -> Path:
        stamp = where.time or _iso(where.EventTimeString)
        hour = f"y={stamp[:4]}/m={stamp[5:7]}/d={stamp[8:10]}/h={stamp[11:13]}/m=00/PT1H.json"
        if category in _ACTIVITY_LOG:
            subscription = where.resourceId.split("/")[2].upper()
            folder = f"insights-activity-logs/resourceId=/SUBSCRIPTIONS/{subscription}"
        elif where.tenantId:
            folder = f"insights-logs-{category.lower()}/tenantId={where.tenantId}"
        else:
            folder = f"insights-logs-{category.lower()}/resourceId={where.resourceId}"
        return self._root / folder / hour

    def close(self) -> None:
        """Nothing is buffered: every message was appended when sent."""


class KafkaSink:
    """Produces each message to one topic, as Azure Monitor produces to an Event Hub."""

    def __init__(self, bootstrap: str, topic: str, *, timeout_s: float = 30.0) -> None:
        self._topic = topic
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._failures = 0
        self._first_failure: str | None = None
        try:
            self._producer = Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "message.max.bytes": MAX_MESSAGE_BYTES + 64 * 1024,
                    "linger.ms": 20,
                    "enable.idempotence": False,
                }
            )
        except KafkaException as exc:
            raise HubsightError(
                f"cannot create a Kafka producer for {bootstrap}: {exc.args[0]}",
                hint="pass --kafka as HOST:PORT of a reachable broker",
            ) from exc

    def _delivered(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self._failures += 1
            self._first_failure = self._first_failure or error.str()

    def send(self, message: SimMessage) -> None:
        """Queue one message; waits for room when the producer's queue is full."""
        while True:
            try:
                self._producer.produce(self._topic, value=message.body, on_delivery=self._delivered)
                break
            except BufferError:
                self._producer.poll(0.5)
            except KafkaException as exc:
                raise HubsightError(
                    f"cannot send to topic {self._topic!r} at {self._bootstrap}: {exc.args[0]}"
                ) from exc
        self._producer.poll(0)

    def close(self) -> None:
        """Wait for every message to be acknowledged."""
        left = self._producer.flush(self._timeout_s)
        if left or self._failures:
            reason = f": {self._first_failure}" if self._first_failure else ""
            raise HubsightError(
                f"{left + self._failures} messages were not delivered to topic {self._topic!r} "
                f"at {self._bootstrap}{reason}",
                hint="check that the broker is reachable and the topic exists",
            )
