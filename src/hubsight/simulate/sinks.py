"""Where simulated messages go: a file or stdout (one message body per line), or a Kafka topic."""

from __future__ import annotations

from typing import IO, Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Producer

from hubsight.errors import HubsightError
from hubsight.simulate.engine import MAX_MESSAGE_BYTES, SimMessage


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
