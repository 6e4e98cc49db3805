"""``hubsight source test`` for Kafka and Event Hubs: the connection walked step by step.

DNS, TCP, TLS, SASL, topic metadata, first message: each step reports what it found, and a
failing step carries the hint. Reading the first message uses its own throwaway consumer
(assigned, never committing), so the source's consumer group is left untouched.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from hubsight.parsing.envelope import split_message
from hubsight.parsing.pipeline import record_category
from hubsight.sources.base import Check, Step
from hubsight.sources.config import EventHubsProfile, SourceConfig
from hubsight.sources.diagnose import Problem
from hubsight.sources.kafka import QuietRepeats, client_settings, diagnose, explain

STEP_NAMES = ("dns", "tcp", "tls", "sasl", "topic", "first_message")


def kafka_checks(config: SourceConfig, timeout: float) -> list[Check]:
    """The steps in order; each later one uses what the earlier ones found."""
    prober = _Prober(config, timeout)
    checks = [prober.dns, prober.tcp, prober.tls, prober.sasl, prober.topic, prober.first_message]
    return list(zip(STEP_NAMES, checks, strict=True))


class _Prober:
    def __init__(self, config: SourceConfig, timeout: float) -> None:
        self.config = config
        self.timeout = timeout
        profile = config.profile
        self.eventhubs = isinstance(profile, EventHubsProfile)
        self.endpoints = [_split_host(s) for s in profile.bootstrap.split(",")]
        settings = client_settings(config)
        self.uses_tls = "SSL" in str(settings["security.protocol"])
        self.uses_sasl = "SASL" in str(settings["security.protocol"])
        self.visible: list[str] = []
        self.partitions: list[tuple[str, int]] = []

    def _fail(self, name: str, code: str, text: str) -> Step:
        diagnosis = diagnose(self.config, code, text)
        return Step(name, "failed", diagnosis.message, diagnosis.hint)

    def _missing(self, text: str) -> Step:
        diagnosis = explain(self.config, Problem.TOPIC_NOT_FOUND, text)
        seen = ", ".join(self.visible[:20]) or "none"
        return Step("topic", "failed", f"{text}; topics visible: {seen}", diagnosis.hint)

    def dns(self) -> Step:
        found = []
        for host, port in self.endpoints:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                return self._fail("dns", "_RESOLVE", f"failed to resolve {host}: {exc.strerror}")
            found.append(f"{host} -> {infos[0][4][0]}")
        return Step("dns", "ok", "; ".join(found))

    def tcp(self) -> Step:
        for host, port in self.endpoints:
            started = time.monotonic()
            try:
                with socket.create_connection((host, port), timeout=self.timeout):
                    pass
            except TimeoutError:
                return self._fail("tcp", "_TRANSPORT", f"connect to {host}:{port} timed out")
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                return self._fail("tcp", "_TRANSPORT", f"connect to {host}:{port} failed: {reason}")
            elapsed = (time.monotonic() - started) * 1000
        return Step("tcp", "ok", f"connected to {host}:{port} in {elapsed:.0f} ms")

    def tls(self) -> Step:
        if not self.uses_tls:
            return Step("tls", "skipped", "this source does not use TLS")
        host, port = self.endpoints[0]
        profile = self.config.profile
        cafile = None if isinstance(profile, EventHubsProfile) else profile.tls_ca
        context = ssl.create_default_context(cafile=cafile)
        try:
            with (
                socket.create_connection((host, port), timeout=self.timeout) as raw,
                context.wrap_socket(raw, server_hostname=host) as tls,
            ):
                version = tls.version()
        except (ssl.SSLError, OSError) as exc:
            return self._fail("tls", "_SSL", f"TLS handshake with {host}:{port} failed: {exc}")
        return Step("tls", "ok", f"{version} with {host}, certificate verified")

    def _metadata_consumer(self) -> tuple[Consumer, list[tuple[str, str]]]:
        errors: list[tuple[str, str]] = []
        settings = client_settings(self.config)
        settings.pop("statistics.interval.ms")
        settings["group.id"] = f"hubsight-test-{uuid.uuid4().hex[:8]}"
        settings["error_cb"] = lambda e: errors.append((e.name(), e.str()))
        settings["logger"] = QuietRepeats()
        return Consumer(settings), errors

    def sasl(self) -> Step:
        consumer, errors = self._metadata_consumer()
        try:
            metadata = consumer.list_topics(timeout=self.timeout)
        except KafkaException as exc:
            # The client's own errors say why (e.g. SASL refused); they arrive only on a poll.
            consumer.poll(0)
            error = exc.args[0] if exc.args else None
            detail = [(error.name(), error.str())] if isinstance(error, KafkaError) else []
            reported = errors or detail or [("_TRANSPORT", str(exc))]
            cause = next((e for e in reported if e[0] != "_ALL_BROKERS_DOWN"), reported[0])
            return self._fail("sasl", *cause)
        finally:
            consumer.close()
        self.visible = sorted(t for t in metadata.topics if not t.startswith("__"))
        self.partitions = [
            (name, pid)
            for name, topic in metadata.topics.items()
            for pid in topic.partitions
            if self._wanted(name)
        ]
        what = (
            "authenticated with SASL PLAIN as $ConnectionString"
            if self.eventhubs
            else ("authenticated" if self.uses_sasl else "connected without authentication")
        )
        return Step("sasl", "ok", f"{what}; {len(self.visible)} topics visible")

    def _wanted(self, topic: str) -> bool:
        if self.config.topic_pattern:
            return re.match(self.config.topic_pattern, topic) is not None
        return topic in self.config.topics

    def topic(self) -> Step:
        if self.config.topic_pattern:
            matched = sorted({t for t, _ in self.partitions})
            if not matched:
                return self._missing(f"no topic matches {self.config.topic_pattern!r}")
            return Step("topic", "ok", f"pattern matches {', '.join(matched)}")
        missing = [t for t in self.config.topics if t not in self.visible]
        if missing:
            return self._missing(f"topic {', '.join(missing)} not found")
        return Step(
            "topic", "ok", f"{', '.join(self.config.topics)}: {len(self.partitions)} partitions"
        )

    def first_message(self) -> Step:
        consumer, _errors = self._metadata_consumer()
        try:
            return self._read_latest(consumer)
        finally:
            consumer.close()

    def _read_latest(self, consumer: Consumer) -> Step:
        assignments = []
        for topic, partition in self.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=self.timeout
            )
            if high > low:
                assignments.append(TopicPartition(topic, partition, high - 1))
        if not assignments:
            diagnosis = explain(self.config, Problem.NO_DATA, "the topic holds no messages yet")
            return Step("first_message", "warning", diagnosis.message, diagnosis.hint)
        consumer.assign(assignments)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            value = message.value() or b""
            pieces = split_message(value)
            categories = sorted({record_category(p.data) or "?" for p in pieces if not p.error})
            return Step(
                "first_message",
                "ok",
                f"read {len(value)} bytes from {message.topic()}[{message.partition()}]"
                f"@{message.offset()}: {len(pieces)} records, categories {', '.join(categories)}",
            )
        return Step("first_message", "warning", "messages exist but none arrived in time")


def _split_host(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    return host, int(port)
