"""The Kafka consumer behind every event source, Event Hubs included (confluent-kafka).

Offsets are never committed automatically: the collector commits a partition's offset only after
the store has durably written everything before it. Rebalance callbacks let the collector drain
and commit before a partition moves to another consumer.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from hubsight.errors import SourceError
from hubsight.logformat import KAFKA_CLIENT_LOGGER
from hubsight.sources.base import Check, Message, PartitionLag, SourceHooks
from hubsight.sources.config import MAX_MESSAGE_BYTES, EventHubsProfile, SourceConfig
from hubsight.sources.diagnose import Diagnosis, Problem, classify, hint_for

EVENTHUBS_USERNAME = "$ConnectionString"
CLIENT_LOG = logging.getLogger(KAFKA_CLIENT_LOGGER)
_FETCH_MAX_BYTES = 50 * 1024 * 1024
# How long a line of the client's log stays quiet once logged: a refused password is retried
# every few hundred milliseconds, which logged ~23,000 identical lines an hour.
REPEAT_QUIET_SECONDS = 300.0
_DIGITS = re.compile(r"\d+")


class QuietRepeats:
    """librdkafka's log of one client, where a line repeating within the quiet time is counted.

    confluent-kafka calls ``log(level, format, *args)`` on the object it is given as ``logger``.
    Lines differing only in numbers ("after 42ms", a broker's id) are one line; it is logged
    again after the quiet time with how many were held back. The error itself stays in the
    source's health meanwhile.
    """

    def __init__(
        self,
        logger: logging.Logger = CLIENT_LOG,
        quiet_seconds: float = REPEAT_QUIET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._quiet = quiet_seconds
        self._clock = clock
        # Per kind of line: when it was last logged and how many were held back since.
        self._seen: dict[tuple[int, str], tuple[float, int]] = {}

    def log(self, level: int, fmt: str, *args: object) -> None:
        """Log a line of the client unless a line like it was logged within the quiet time."""
        text = fmt % args if args else fmt
        key = (level, _DIGITS.sub("N", text))
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self._quiet:
            self._seen[key] = (last[0], last[1] + 1)
            return
        if len(self._seen) >= 256:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self._quiet}
        self._seen[key] = (now, 0)
        held = last[1] if last is not None else 0
        if held:
            text += f" (repeated {held} times since it was last logged)"
        self._logger.log(level, "%s", text)


def client_settings(config: SourceConfig) -> dict[str, Any]:
    """librdkafka settings for ``config`` (secrets included: never log the result)."""
    tuning = config.tuning
    settings: dict[str, Any] = {
        "group.id": config.consumer_group,
        "client.id": f"hubsight-{config.name}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": config.start_from,
        "allow.auto.create.topics": False,
        "socket.keepalive.enable": True,
        "metadata.max.age.ms": tuning.metadata_max_age_ms,
        # librdkafka refreshes subscribed topics' metadata on this interval; a third of the age
        # keeps the cache warm and notices new topics (a pattern subscription) in time.
        "topic.metadata.refresh.interval.ms": max(tuning.metadata_max_age_ms // 3, 1_000),
        "connections.max.idle.ms": tuning.connections_max_idle_ms,
        "session.timeout.ms": tuning.session_timeout_ms,
        "heartbeat.interval.ms": max(tuning.session_timeout_ms // 10, 300),
        "max.poll.interval.ms": 300_000,
        "socket.timeout.ms": tuning.socket_timeout_ms,
        "reconnect.backoff.ms": 200,
        "reconnect.backoff.max.ms": tuning.reconnect_backoff_max_ms,
        "max.partition.fetch.bytes": 2 * MAX_MESSAGE_BYTES,
        "fetch.max.bytes": _FETCH_MAX_BYTES,
        "receive.message.max.bytes": _FETCH_MAX_BYTES + 2 * MAX_MESSAGE_BYTES,
        # Messages fetched ahead of the collector: one full fetch (50 MB) and a few batches;
        # more only adds memory while a backlog drains (librdkafka's default).
        "queued.max.messages.kbytes": 64 * 1024,
        "statistics.interval.ms": 5_000,
    }
    profile = config.profile
    if isinstance(profile, EventHubsProfile):
        settings.update(
            {
                "bootstrap.servers": profile.bootstrap,
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "PLAIN",
                "sasl.username": EVENTHUBS_USERNAME,
                "sasl.password": profile.connection_string.get_secret_value(),
            }
        )
        return settings
    settings["bootstrap.servers"] = profile.bootstrap
    sasl = profile.sasl != "none"
    settings["security.protocol"] = {
        (False, False): "PLAINTEXT",
        (False, True): "SSL",
        (True, False): "SASL_PLAINTEXT",
        (True, True): "SASL_SSL",
    }[(sasl, profile.tls)]
    if sasl:
        settings["sasl.mechanism"] = profile.sasl.upper()
        settings["sasl.username"] = profile.username
        settings["sasl.password"] = profile.password.get_secret_value() if profile.password else ""
    if profile.tls and profile.tls_ca:
        settings["ssl.ca.location"] = profile.tls_ca
    return settings


def secrets_of(config: SourceConfig) -> list[str]:
    """Every secret value of ``config``, to cut from any text that leaves the process."""
    profile = config.profile
    if isinstance(profile, EventHubsProfile):
        value = profile.connection_string.get_secret_value()
        key = next(
            (
                p.split("=", 1)[1]
                for p in value.split(";")
                if p.lower().startswith("sharedaccesskey=")
            ),
            "",
        )
        return [s for s in (value, key) if s]
    return [profile.password.get_secret_value()] if profile.password else []


def diagnose(config: SourceConfig, code_name: str, text: str) -> Diagnosis:
    """Classify a client error for this source, with its hint, without secrets."""
    profile = config.profile
    eventhubs = isinstance(profile, EventHubsProfile)
    endpoint = profile.bootstrap
    return classify(
        code_name,
        text,
        eventhubs=eventhubs,
        endpoint=endpoint,
        topics=config.subscription,
        secrets=secrets_of(config),
    )


def explain(config: SourceConfig, problem: Problem, message: str) -> Diagnosis:
    """A diagnosis of a problem hubsight found itself (not from a client error)."""
    hint = hint_for(
        problem,
        eventhubs=isinstance(config.profile, EventHubsProfile),
        endpoint=config.profile.bootstrap,
        topics=config.subscription,
    )
    return Diagnosis(problem, message, hint)


class KafkaSource:
    """One consumer of one event source."""

    def __init__(self, config: SourceConfig, hooks: SourceHooks) -> None:
        self.config = config
        self._on_error = hooks.on_error
        self._on_assign = hooks.on_assign
        self._on_revoke = hooks.on_revoke
        self._on_lag = hooks.on_lag
        settings = client_settings(config)
        settings["error_cb"] = self._error
        settings["stats_cb"] = self._stats
        # librdkafka logs through Python logging, not straight to stderr; errors reach the
        # user through error_cb and health, so its own log is kept to warnings and worse.
        settings["logger"] = QuietRepeats()
        try:
            self._consumer = Consumer(settings)
        except KafkaException as exc:
            diagnosis = diagnose(config, "CONFIG", str(exc))
            raise SourceError(diagnosis.message, hint=diagnosis.hint, retriable=False) from None
        self._consumer.subscribe(
            config.subscription,
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._revoked,
        )
        self._paused = False
        self.assignment: set[tuple[str, int]] = set()

    def _error(self, error: KafkaError) -> None:
        self._on_error(diagnose(self.config, error.name(), error.str()))

    def _stats(self, stats_json: str) -> None:
        stats = json.loads(stats_json)
        lags = []
        for topic, data in stats.get("topics", {}).items():
            for pid, part in data.get("partitions", {}).items():
                partition = int(pid)
                if partition < 0 or (topic, partition) not in self.assignment:
                    continue
                committed = part.get("committed_offset", -1001)
                high = part.get("hi_offset", -1)
                lags.append(
                    PartitionLag(
                        topic,
                        partition,
                        committed if committed >= 0 else None,
                        high if high >= 0 else None,
                    )
                )
        self._on_lag(lags)

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self.assignment.update(keys)
        self._on_assign(keys)

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._on_revoke(keys)
        self.assignment.difference_update(keys)

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages; errors on the way are reported, not raised."""
        raw = self._consumer.consume(num_messages=max_messages, timeout=timeout)
        received = datetime.now(UTC)
        batch: list[Message] = []
        for item in raw:
            error = item.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self._error(error)
                continue
            kind, millis = item.timestamp()
            topic, partition, offset = item.topic(), item.partition(), item.offset()
            if topic is None or partition is None or offset is None:
                continue  # only error events lack a position, and those were handled above
            batch.append(
                Message(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    value=item.value() or b"",
                    received_time=received,
                    enqueued_time=(
                        datetime.fromtimestamp(millis / 1000, UTC) if kind and millis > 0 else None
                    ),
                )
            )
        return batch

    def commit(self, offsets: dict[tuple[str, int], int], *, wait: bool) -> None:
        """Commit the next offset to read for each partition (the last stored one + 1)."""
        if not offsets:
            return
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if wait:
                self._consumer.commit(offsets=partitions, asynchronous=False)
            else:
                self._consumer.commit(offsets=partitions, asynchronous=True)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError._NO_OFFSET:
                return
            # A failed commit loses nothing: the messages come again and the store skips them.
            text = error.str() if isinstance(error, KafkaError) else str(exc)
            name = error.name() if isinstance(error, KafkaError) else "COMMIT"
            self._on_error(diagnose(self.config, name, f"commit failed: {text}"))

    def pause(self) -> None:
        """Stop fetching on every assigned partition (the store is behind)."""
        if not self._paused and self.assignment:
            self._consumer.pause([TopicPartition(t, p) for t, p in self.assignment])
            self._paused = True

    def resume(self) -> None:
        """Fetch again."""
        if self._paused:
            self._consumer.resume([TopicPartition(t, p) for t, p in self.assignment])
            self._paused = False

    def list_topics(self, timeout: float) -> list[str] | None:
        """Names of the topics this credential can see; None if no broker answered in time."""
        try:
            metadata = self._consumer.list_topics(timeout=timeout)
        except KafkaException:
            return None
        return sorted(t for t in metadata.topics if not t.startswith("__"))

    def high_watermark(self, topic: str, partition: int, timeout: float) -> int | None:
        """The partition's high watermark, asked of the broker (not librdkafka's cache)."""
        try:
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout, cached=False
            )
        except KafkaException:
            return None
        return int(high) if high is not None and high >= 0 else None

    def close(self) -> None:
        """Leave the group (``on_revoke`` runs first) and close connections."""
        self._consumer.close()


class KafkaDriver:
    """Kafka and Azure Event Hubs' Kafka endpoint, through librdkafka."""

    def open(self, config: SourceConfig, hooks: SourceHooks) -> KafkaSource:
        """A consumer of ``config``'s subscription in its consumer group."""
        return KafkaSource(config, hooks)

    def diagnose(self, config: SourceConfig, code_name: str, text: str) -> Diagnosis:
        """A librdkafka error classified for this source."""
        return diagnose(config, code_name, text)

    def explain(self, config: SourceConfig, problem: Problem, message: str) -> Diagnosis:
        """A problem found by hubsight, with the hint for Kafka or Event Hubs."""
        return explain(config, problem, message)

    def checks(self, config: SourceConfig, timeout: float) -> list[Check]:
        """DNS, TCP, TLS, SASL, topic, first message."""
        from hubsight.sources.kafka_probe import kafka_checks

        return kafka_checks(config, timeout)
