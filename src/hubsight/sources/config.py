"""Event source configuration: the Event Hubs and Kafka profiles and their client settings.

A ``SourceConfig`` is checked completely when it is built (pydantic, unknown keys rejected), so a
source that is stored can at least be tried. Secrets are ``SecretStr``: they print as stars.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hubsight.errors import ConfigError
from hubsight.sources.eventhubs import ConnectionString, check_against_source

EVENTHUBS_KAFKA_PORT = 9093
DEFAULT_TOPIC = "insights-operational-logs"
# A message of Event Hubs Standard is at most 1 MB; fetches must admit one whole message plus
# the record batch framing around it.
MAX_MESSAGE_BYTES = 1024 * 1024
# \Z, not $: "$" also matches before a final newline.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}\Z")
# Labels of letters, digits and inner hyphens, separated by single dots (an IPv4 address is one).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?\Z")
_NEVER_IN_ADDRESS = frozenset("=;@/ ")


def check_address(text: str, *, what: str, fix: str, port_required: bool) -> str:
    """``host[:port]`` as given, or a ``ValueError`` naming the bad part and ``fix``.

    The one check of a broker address: the CLI, the API and the console's form all build a
    ``SourceConfig``, so each refuses the same addresses with the same words.
    """
    pasted = next((c for c in text if c in _NEVER_IN_ADDRESS), None)
    if pasted is not None:
        # Not echoed: a connection string or a password pasted in the wrong field would be.
        raise ValueError(
            f"{what} is not an address: it holds {pasted!r}, which no host name does "
            f"(a connection string or password has a field of its own); {fix}"
        )
    host, colon, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"{what} {text!r} has no host name; {fix}")
    if not _HOST_NAME.match(host):
        raise ValueError(
            f"{what} {text!r}: {host!r} is not a host name (letters, digits and inner '-', "
            f"in labels separated by single dots); {fix}"
        )
    if not colon:
        if port_required:
            raise ValueError(f"{what} {text!r} has no port; {fix}")
        return text
    if not port.isascii() or not port.isdigit():
        what_port = f"the port {port!r} is not a number" if port else "the port is missing"
        raise ValueError(f"{what} {text!r}: {what_port}; {fix}")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"{what} {text!r}: port {int(port)} is not between 1 and 65535; {fix}")
    return text


_BOOTSTRAP_FIX = "write host:port[,host:port...], e.g. kafka-1:9092"


def normalize_server(server: str) -> str:
    """A namespace host as written in an Event Hubs source: lower case, no ``sb://``, no ``/``."""
    return server.strip().lower().removeprefix("sb://").rstrip("/")


def _stored(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("stored"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventHubsProfile(_Strict):
    """An Azure Event Hubs namespace reached over its Kafka endpoint."""

    kind: Literal["eventhubs"] = "eventhubs"
    server: str = Field(
        description="Namespace host, e.g. contoso-logs.servicebus.windows.net[:9093]"
    )
    connection_string: SecretStr

    @field_validator("server")
    @classmethod
    def _server(cls, value: str, info: ValidationInfo) -> str:
        value = normalize_server(value)
        if _stored(info):
            return value
        fix = (
            "give the namespace host, e.g. contoso-logs.servicebus.windows.net "
            f"(port {EVENTHUBS_KAFKA_PORT} unless one is given)"
        )
        return check_address(value, what="server", fix=fix, port_required=False)

    @property
    def host(self) -> str:
        """The namespace host without the port."""
        return self.server.split(":")[0]

    @property
    def bootstrap(self) -> str:
        """host:port of the Kafka endpoint (port 9093 unless given)."""
        return self.server if ":" in self.server else f"{self.server}:{EVENTHUBS_KAFKA_PORT}"


SaslMechanism = Literal["none", "plain", "scram-sha-256", "scram-sha-512"]


class KafkaProfile(_Strict):
    """A Kafka cluster of the user's own that relays Azure logs."""

    kind: Literal["kafka"] = "kafka"
    bootstrap: str = Field(description="host:port[,host:port...]")
    sasl: SaslMechanism = "none"
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    tls_ca: str | None = Field(default=None, description="CA bundle file to verify the brokers")

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap(cls, value: str, info: ValidationInfo) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError(f"bootstrap is empty; {_BOOTSTRAP_FIX}")
        if not _stored(info):
            for server in servers:
                check_address(
                    server, what="bootstrap server", fix=_BOOTSTRAP_FIX, port_required=True
                )
        return ",".join(servers)

    @model_validator(mode="before")
    @classmethod
    def _ca_means_tls(cls, data: object) -> object:
        # A CA file is only ever given to verify TLS: take it as asking for TLS.
        if isinstance(data, dict) and data.get("tls_ca") and "tls" not in data:
            return {**data, "tls": True}
        return data

    @model_validator(mode="after")
    def _credentials(self) -> KafkaProfile:
        if self.tls_ca and not self.tls:
            raise ValueError("tls_ca is given but tls is false; set tls to true to use the CA")
        if self.sasl != "none" and (not self.username or self.password is None):
            raise ValueError(f"SASL {self.sasl} needs a username and a password")
        return self


Profile = Annotated[EventHubsProfile | KafkaProfile, Field(discriminator="kind")]


class Tuning(_Strict):
    """Client timings; the defaults suit Azure, tests shorten them."""

    session_timeout_ms: int = Field(default=30_000, ge=1_000, le=300_000)
    # Azure closes connections idle for 4 minutes; refresh and reap ours before that.
    metadata_max_age_ms: int = Field(default=180_000, ge=1_000)
    connections_max_idle_ms: int = Field(default=180_000, ge=1_000)
    reconnect_backoff_max_ms: int = Field(default=10_000, ge=100)
    socket_timeout_ms: int = Field(default=60_000, ge=1_000)


class SourceConfig(_Strict):
    """One event source: where to read, what, and how to label it."""

    name: str
    profile: Profile
    topics: list[str] = Field(default_factory=lambda: [DEFAULT_TOPIC])
    topic_pattern: str | None = Field(
        default=None, description="Regex subscription, e.g. ^insights-logs-.* (replaces topics)"
    )
    consumer_group: str = "hubsight"
    keep_unparsed: bool = False
    default_domain: str | None = None
    enabled: bool = True
    start_from: Literal["earliest", "latest"] = "earliest"
    tuning: Tuning = Field(default_factory=Tuning)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "name must start with a letter or digit and hold only letters, digits, spaces, "
                f"'.', '_' or '-' (at most 64), not {value!r}"
            )
        return value

    @field_validator("topic_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value if value.startswith("^") else f"^{value}"
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"topic pattern {value!r} is not a valid regex: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SourceConfig:
        if not self.topic_pattern and not self.topics:
            raise ValueError("give at least one topic or a topic pattern")
        if any(not t.strip() or t.startswith("^") for t in self.topics):
            raise ValueError("topics must be plain names; put a regex in topic_pattern")
        if isinstance(self.profile, EventHubsProfile):
            conn = ConnectionString.parse(self.profile.connection_string.get_secret_value())
            topics = [] if self.topic_pattern else self.topics
            check_against_source(conn, self.profile.host, topics)
        return self

    @property
    def subscription(self) -> list[str]:
        """What the consumer subscribes to: the pattern, or the topic names."""
        return [self.topic_pattern] if self.topic_pattern else list(self.topics)

    def public(self) -> dict[str, Any]:
        """The configuration with every secret replaced by whether it is set."""
        data = self.model_dump(mode="json")
        profile = data["profile"]
        for secret in ("connection_string", "password"):
            if secret in profile:
                profile[secret] = "(set)" if profile[secret] else None
        return data


_SOURCE_FIELDS = (
    'a source has a name, a profile (kind "eventhubs" with server and connection_string, or '
    'kind "kafka" with bootstrap) and topics or topic_pattern; /openapi.json (POST '
    "/api/v1/event-sources) and `hubsight source add --help` list every field"
)


def make_source(data: dict[str, object], *, stored: bool = False) -> SourceConfig:
    """Build a source from plain data; validation errors become one ``ConfigError``.

    ``stored``: the data was read back from the catalog, where older checks let it in.
    """
    try:
        return SourceConfig.model_validate(data, context={"stored": stored})
    except ValidationError as exc:
        raise ConfigError(describe_validation(exc), hint=_SOURCE_FIELDS) from None


def describe_validation(exc: ValidationError) -> str:
    """One readable line per problem of a pydantic ``ValidationError``, without input values."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"] if p not in ("eventhubs", "kafka"))
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)
