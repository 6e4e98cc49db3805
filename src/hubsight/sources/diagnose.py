"""Turn librdkafka's errors into the few problems a user meets, each with what to do about it.

The hints are written for Event Hubs first (the Kafka endpoint listens only on TCP 9093, takes
SASL PLAIN with user ``$ConnectionString``) and adapted for a user's own Kafka.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Problem(StrEnum):
    """What went wrong, as a user would name it."""

    UNREACHABLE = "unreachable"
    DNS = "dns"
    TLS = "tls"
    SASL_MECHANISM = "sasl_mechanism"
    AUTHENTICATION = "authentication"
    TOPIC_NOT_FOUND = "topic_not_found"
    NO_DATA = "no_data"
    AUTHORIZATION = "authorization"
    CONSUMER_GROUP = "consumer_group"
    STORE = "store"
    STALLED = "stalled"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A classified problem: a one-line message and a hint saying what to do."""

    problem: Problem
    message: str
    hint: str


PER_CATEGORY_HUBS = (
    "Entra ID diagnostic settings without an Event Hub name send to one hub per category "
    "(insights-logs-signinlogs, insights-logs-auditlogs, ...), and the Activity Log to "
    "insights-operational-logs; a topic pattern such as ^insights-logs-.* reads them all"
)


def hint_for(
    problem: Problem, *, eventhubs: bool, endpoint: str, topics: Iterable[str] = ()
) -> str:
    """What the user should do about ``problem`` for a source reaching ``endpoint``."""
    topic_list = ", ".join(topics) or "(none)"
    if problem is Problem.UNREACHABLE:
        if eventhubs:
            return (
                f"open an outbound TCP connection to {endpoint} (port 9093) from this host in "
                "firewalls and proxies; the Event Hubs Kafka endpoint listens only on 9093"
            )
        return f"check that the broker at {endpoint} is running and that this host may reach it"
    if problem is Problem.DNS:
        if eventhubs:
            return (
                "check the namespace host: it is <namespace>.servicebus.windows.net, as in the "
                "Endpoint of the connection string; the DNS server of this host must resolve it"
            )
        return f"check the host names in the bootstrap servers ({endpoint}) and this host's DNS"
    if problem is Problem.TLS:
        return (
            "the TLS handshake failed: check this host's clock, any proxy that intercepts TLS, "
            "and the CA bundle (for your own Kafka, the --tls-ca file)"
        )
    if problem is Problem.SASL_MECHANISM:
        if eventhubs:
            return (
                "copy the 'Connection string-primary key' of a Shared Access Policy again; the "
                "user name must be $ConnectionString and the mechanism PLAIN. Basic-tier "
                "namespaces have no Kafka endpoint: use Standard or higher"
            )
        return "choose the SASL mechanism the broker offers (see its supported mechanisms above)"
    if problem is Problem.AUTHENTICATION:
        if eventhubs:
            return (
                "the key was refused: it is wrong or was regenerated, or the Shared Access Policy "
                "lacks the Listen claim; copy the connection string of a policy with Listen again"
            )
        return "the broker refused the user name or password; check them and the user's SCRAM setup"
    if problem is Problem.TOPIC_NOT_FOUND:
        hubs = f"; {PER_CATEGORY_HUBS}" if eventhubs else ""
        return (
            f"verify the Event Hub (topic) name: {topic_list} does not exist or this policy "
            f"cannot see it; `hubsight source test NAME` lists the topics it can see{hubs}"
        )
    if problem is Problem.NO_DATA:
        hubs = f"; {PER_CATEGORY_HUBS}" if eventhubs else ""
        return (
            f"connected, but nothing arrives on {topic_list}: check that the diagnostic settings "
            f"send to this Event Hub and that the topic name is right{hubs}"
        )
    if problem is Problem.AUTHORIZATION:
        return (
            "the credential may not read this topic or consumer group: give the policy the Listen "
            "claim (Event Hubs) or the user read ACLs on the topic and group (Kafka)"
        )
    if problem is Problem.CONSUMER_GROUP:
        return (
            "the consumer group cannot be used: check its name; on Event Hubs Standard at most 20 "
            "consumer groups exist per hub and each allows 5 readers per partition"
        )
    if problem is Problem.STALLED:
        if eventhubs:
            return (
                f"{endpoint} keeps the connection but does not answer: check Azure's service "
                "health for Event Hubs and any proxy or firewall that holds connections open; "
                "collection goes on by itself when it answers"
            )
        return (
            f"the broker at {endpoint} keeps the connection but does not answer (hung, paused "
            "or overloaded): check its process and load; collection goes on by itself when it "
            "answers"
        )
    if problem is Problem.STORE:
        return "the event store failed; check the data directory's disk space and permissions"
    return "see the message; `hubsight source test NAME` walks the connection step by step"


_RULES: list[tuple[Problem, re.Pattern[str]]] = [
    (Problem.DNS, re.compile(r"_RESOLVE|failed to resolve|name or service not known", re.I)),
    (
        Problem.SASL_MECHANISM,
        re.compile(
            r"mechanism handshake failed|unsupported sasl mechanism|invalid sasl mech", re.I
        ),
    ),
    (
        Problem.AUTHENTICATION,
        re.compile(r"_AUTHENTICATION|sasl authentication|authentication failed|unknown-user", re.I),
    ),
    (Problem.TLS, re.compile(r"(?<![a-z])_SSL|ssl handshake|certificate|\bTLS\b", re.I)),
    (
        Problem.TOPIC_NOT_FOUND,
        re.compile(r"UNKNOWN_TOPIC|unknown topic|topic not available", re.I),
    ),
    (
        Problem.AUTHORIZATION,
        re.compile(r"TOPIC_AUTHORIZATION|CLUSTER_AUTHORIZATION|not authorized", re.I),
    ),
    (
        Problem.CONSUMER_GROUP,
        re.compile(r"GROUP_AUTHORIZATION|INVALID_GROUP_ID|GROUP_MAX_SIZE|coordinator", re.I),
    ),
    (
        Problem.UNREACHABLE,
        re.compile(
            r"_TRANSPORT|_ALL_BROKERS_DOWN|connection refused|timed out|_TIMED_OUT|"
            r"connect to .* failed|disconnected",
            re.I,
        ),
    ),
]


def classify(
    code_name: str,
    text: str,
    *,
    eventhubs: bool,
    endpoint: str,
    topics: Iterable[str] = (),
    secrets: Iterable[str] = (),
) -> Diagnosis:
    """Classify one librdkafka error (its code name and text); secrets are cut from the text."""
    message = redact(text or code_name, secrets)
    haystack = f"{code_name} {text}"
    problem = next((p for p, pattern in _RULES if pattern.search(haystack)), Problem.OTHER)
    return Diagnosis(
        problem, message, hint_for(problem, eventhubs=eventhubs, endpoint=endpoint, topics=topics)
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a secret (and of any SharedAccessKey value) removed."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return re.sub(r"(SharedAccessKey=)[^;\s\"']+", r"\1[redacted]", text, flags=re.I)
