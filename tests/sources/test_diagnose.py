"""librdkafka's errors, as the tansu broker and the resolver produced them, map to hints."""

from __future__ import annotations

import pytest

from hubsight.sources.diagnose import Problem, classify, redact

from tests.support import PLANTED_KEY

# Texts captured from confluent-kafka against tansu and a closed port on this machine.
CASES = [
    (
        "_TRANSPORT",
        "localhost:51281/bootstrap: Connect to ipv4#127.0.0.1:51281 failed: Connection refused "
        "(after 0ms in state CONNECT)",
        Problem.UNREACHABLE,
        "9093",
    ),
    (
        "_RESOLVE",
        "nosuch.servicebus.windows.net:9093/bootstrap: Failed to resolve "
        "'nosuch.servicebus.windows.net:9093': Name or service not known",
        Problem.DNS,
        "namespace host",
    ),
    (
        "_AUTHENTICATION",
        "sasl_plaintext://localhost:43567/bootstrap: SASL PLAIN mechanism handshake failed: "
        "Local: Broker transport failure: broker's supported mechanisms: (n/a)",
        Problem.SASL_MECHANISM,
        "$ConnectionString",
    ),
    (
        "_AUTHENTICATION",
        "SASL authentication error: SASL SCRAM authentication failed: broker responded with "
        "unknown-user (after 14ms in state AUTH_REQ)",
        Problem.AUTHENTICATION,
        "Listen",
    ),
    (
        "_AUTHENTICATION",
        "Invalid SASL mechanism",
        Problem.SASL_MECHANISM,
        "Basic-tier",
    ),
    (
        "UNKNOWN_TOPIC_OR_PART",
        "Subscribed topic not available: nosuch: Broker: Unknown topic or partition",
        Problem.TOPIC_NOT_FOUND,
        "insights-logs-signinlogs",
    ),
    ("_SSL", "SSL handshake failed: certificate verify failed", Problem.TLS, "clock"),
    (
        "TOPIC_AUTHORIZATION_FAILED",
        "Broker: Topic authorization failed",
        Problem.AUTHORIZATION,
        "Listen",
    ),
    (
        "GROUP_AUTHORIZATION_FAILED",
        "Broker: Group authorization failed",
        Problem.CONSUMER_GROUP,
        "consumer group",
    ),
]


@pytest.mark.parametrize(("code", "text", "problem", "hint_part"), CASES)
def test_event_hubs_errors_get_their_hint(
    code: str, text: str, problem: Problem, hint_part: str
) -> None:
    diagnosis = classify(
        code,
        text,
        eventhubs=True,
        endpoint="ns.servicebus.windows.net:9093",
        topics=["insights-operational-logs"],
    )
    assert diagnosis.problem is problem
    assert hint_part in diagnosis.hint
    assert diagnosis.message == text


def test_kafka_profile_hints_do_not_talk_about_azure() -> None:
    diagnosis = classify("_TRANSPORT", "Connection refused", eventhubs=False, endpoint="k:9092")
    assert diagnosis.problem is Problem.UNREACHABLE
    assert "9093" not in diagnosis.hint
    assert "k:9092" in diagnosis.hint


def test_secrets_are_cut_from_messages() -> None:
    text = f"failed with Endpoint=sb://x/;SharedAccessKeyName=p;SharedAccessKey={PLANTED_KEY};x"
    assert PLANTED_KEY not in redact(text, [])
    assert redact("pw=hunter2!", ["hunter2!"]) == "pw=[redacted]"
    diagnosis = classify(
        "_X", f"oops {PLANTED_KEY}", eventhubs=True, endpoint="e", secrets=[PLANTED_KEY]
    )
    assert PLANTED_KEY not in diagnosis.message
    assert diagnosis.problem is Problem.OTHER


def test_a_refused_sasl_ssl_connection_is_unreachable_not_tls() -> None:
    text = "sasl_ssl://ns:9093/bootstrap: Connect to ipv4#10.0.0.1:9093 failed: Connection refused"
    diagnosis = classify("_TRANSPORT", text, eventhubs=True, endpoint="ns:9093")
    assert diagnosis.problem is Problem.UNREACHABLE
