"""The Kafka client's own log: a refusal it retries for hours is one line, not one a retry."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from hubsight.devbroker import LocalBroker
from hubsight.sources.diagnose import Problem
from hubsight.sources.kafka import CLIENT_LOG, QuietRepeats

from tests.support import PLANTED_PASSWORD, kafka_source, serving, state_of, wait_until

SASL_FAILED = "SASL authentication error"


def _client_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == CLIENT_LOG.name and text in r.getMessage()
    ]


@pytest.mark.integration
def test_a_refused_password_is_logged_once_while_health_keeps_saying_it(
    auth_broker: LocalBroker, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = kafka_source(
        "refused",
        auth_broker.bootstrap,
        "anything",
        profile={"sasl": "scram-sha-256", "username": "nobody", "password": PLANTED_PASSWORD},
    )
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG.name)
    with serving(data_dir, source) as service:
        wait_until(
            lambda: state_of(service, source.name).get("problem") == Problem.AUTHENTICATION.value,
            timeout=30,
            what="the authentication problem in the source's health",
        )
        # The client retries every few hundred milliseconds: each retry logged an error line.
        time.sleep(3)
        health = state_of(service, source.name)
    assert health["state"] == "error"
    assert SASL_FAILED in health["last_error"]
    lines = _client_lines(caplog, SASL_FAILED)
    assert len(lines) == 1, lines


def test_a_line_repeating_is_logged_again_after_the_quiet_time_with_its_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = QuietRepeats(quiet_seconds=300, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger=CLIENT_LOG.name)
    fmt = "%s [%s] %s"
    for after in (42, 17, 230):
        log.log(logging.ERROR, fmt, "FAIL", "hubsight-a#consumer-1", f"refused (after {after}ms)")
        now[0] += 50
    # Another line, and the same line at another level, are not held back by the first.
    log.log(logging.ERROR, fmt, "FAIL", "hubsight-a#consumer-1", "connection refused")
    log.log(logging.WARNING, fmt, "FAIL", "hubsight-a#consumer-1", "refused (after 5ms)")
    now[0] = 299.9
    log.log(logging.ERROR, fmt, "FAIL", "hubsight-a#consumer-1", "refused (after 1ms)")
    now[0] = 300.0
    log.log(logging.ERROR, fmt, "FAIL", "hubsight-a#consumer-1", "refused (after 3ms)")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "FAIL [hubsight-a#consumer-1] refused (after 42ms)"),
        (logging.ERROR, "FAIL [hubsight-a#consumer-1] connection refused"),
        (logging.WARNING, "FAIL [hubsight-a#consumer-1] refused (after 5ms)"),
        (
            logging.ERROR,
            "FAIL [hubsight-a#consumer-1] refused (after 3ms) "
            "(repeated 3 times since it was last logged)",
        ),
    ]
