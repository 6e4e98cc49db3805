"""Event Hubs connection strings: parse, validate against the source, and build from a key.

The Kafka endpoint of Event Hubs authenticates with SASL PLAIN, user ``$ConnectionString`` and the
whole connection string as the password. Only a namespace- or hub-level Shared Access Policy key
works there; a SAS token (``SharedAccessSignature=``) does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubsight.errors import CredentialError

_COPY_HINT = (
    "in the Azure portal open the Event Hubs namespace > Shared access policies > your policy "
    "(with Listen) and copy 'Connection string-primary key'"
)
NAMESPACE_SUFFIX = ".servicebus.windows.net"


@dataclass(frozen=True, slots=True)
class ConnectionString:
    """The parts of an Event Hubs connection string that hubsight needs."""

    namespace_host: str
    key_name: str
    entity_path: str | None

    @staticmethod
    def parse(text: str) -> ConnectionString:
        """Parse and check ``text``; errors name the missing or wrong part, never the key."""
        text = text.strip()
        if not text:
            raise CredentialError("the connection string is empty", hint=_COPY_HINT)
        parts: dict[str, str] = {}
        for segment in text.split(";"):
            if not segment.strip():
                continue
            name, sep, value = segment.partition("=")
            if not sep:
                raise CredentialError(
                    f"the connection string has a part without '=': {name.strip()[:20]!r}",
                    hint=_COPY_HINT,
                )
            parts[name.strip().lower()] = value.strip()
        if "sharedaccesssignature" in parts:
            raise CredentialError(
                "the connection string holds a SAS token (SharedAccessSignature=); the Event Hubs "
                "Kafka endpoint accepts only a Shared Access Policy key",
                hint=_COPY_HINT,
            )
        missing = [
            label
            for label, key in (
                ("Endpoint", "endpoint"),
                ("SharedAccessKeyName", "sharedaccesskeyname"),
                ("SharedAccessKey", "sharedaccesskey"),
            )
            if not parts.get(key)
        ]
        if missing:
            raise CredentialError(
                f"the connection string has no {' and no '.join(missing)}", hint=_COPY_HINT
            )
        endpoint = parts["endpoint"]
        scheme, sep, rest = endpoint.partition("://")
        if not sep or scheme.lower() != "sb" or not rest.strip("/"):
            raise CredentialError(
                f"the connection string's Endpoint must look like "
                f"sb://<namespace>{NAMESPACE_SUFFIX}/, not {endpoint!r}",
                hint=_COPY_HINT,
            )
        host = rest.strip("/").split("/")[0].split(":")[0].lower()
        return ConnectionString(
            namespace_host=host,
            key_name=parts["sharedaccesskeyname"],
            entity_path=parts.get("entitypath") or None,
        )


def build_connection_string(namespace_host: str, key_name: str, key: str) -> str:
    """A namespace-level connection string from a policy name and its key."""
    if not key_name.strip() or not key.strip():
        raise CredentialError(
            "a Shared Access Policy name and its key are both needed", hint=_COPY_HINT
        )
    return (
        f"Endpoint=sb://{namespace_host}/;SharedAccessKeyName={key_name.strip()};"
        f"SharedAccessKey={key.strip()}"
    )


def check_against_source(conn: ConnectionString, server_host: str, topics: list[str]) -> None:
    """Reject a connection string that cannot serve this server and these topics."""
    if conn.namespace_host != server_host.lower():
        raise CredentialError(
            f"the connection string is for {conn.namespace_host} but the server is {server_host}",
            hint="use the namespace host of the connection string's Endpoint as the server, or "
            "copy the connection string of the namespace you meant",
        )
    if conn.entity_path and topics and any(t != conn.entity_path for t in topics):
        raise CredentialError(
            f"the connection string is limited to the Event Hub {conn.entity_path!r} "
            f"(EntityPath) but the source reads {', '.join(repr(t) for t in topics)}",
            hint=f"set the topic to {conn.entity_path!r}, or use a namespace-level policy's "
            "connection string (without EntityPath)",
        )
