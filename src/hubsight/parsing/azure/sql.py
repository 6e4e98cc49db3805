"""Azure SQL auditing: ``SQLSecurityAuditEvents`` (logins, queries, permission changes).

Microsoft's SQL audit log format, in ``properties``: ``event_time``, ``action_id`` and
``action_name`` (``BATCH COMPLETED``, ``DATABASE AUTHENTICATION FAILED``, ...), ``succeeded``,
``server_principal_name``, ``client_ip``, ``application_name``, ``database_name``,
``object_name`` and the ``statement`` run.
"""

from __future__ import annotations

from hubsight.parsing.azure.activity import lookup
from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import (
    blanks_to_none,
    first_time,
    nonempty,
    set_source,
    set_user,
)
from hubsight.parsing.azure.resourcelog import read_resource_log
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet

SQL_CATEGORIES = ("SQLSecurityAuditEvents",)
# A statement is kept whole in the raw record; the searchable field holds its start.
MAX_STATEMENT = 2_000


class SqlAuditParser:
    """Normalizes SQL audit records into Cloud Service Activity."""

    categories = SQL_CATEGORIES

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one SQL audit record."""
        event, _head, props = read_resource_log(
            record, ctx, LogSet.CLOUD_SERVICE_ACTIVITY, self._geoip
        )
        event.service = "Azure SQL"
        # ``time`` is when Azure wrote the record; ``event_time`` when the server did the action.
        event.timestamp = first_time(lookup(props, "event_time")) or event.timestamp
        event.operation = nonempty(lookup(props, "action_name")) or event.operation
        action = nonempty(lookup(props, "action_id"))
        event.action = action.strip() if action else None
        event.result = succeeded_result(lookup(props, "succeeded")) or event.result
        principal = nonempty(lookup(props, "server_principal_name"))
        if principal and "@" in principal:  # an Entra user or group signed in to SQL
            set_user(event, principal, ctx.default_domain)
            event.actor_type = "user"
        elif principal:
            event.user = principal  # a SQL login, not an Entra name
            event.actor_type = "sql_login"
        event.application = nonempty(lookup(props, "application_name"))
        event.target_resource = nonempty(lookup(props, "database_name")) or event.target_resource
        event.object_name = nonempty(lookup(props, "object_name"))
        statement = nonempty(lookup(props, "statement"))
        event.statement = statement[:MAX_STATEMENT] if statement else None
        if event.result == "FAILED":
            event.failure_reason = nonempty(lookup(props, "additional_information"))
        set_source(event, nonempty(lookup(props, "client_ip")), self._geoip)
        return blanks_to_none(event)


def succeeded_result(value: object) -> str | None:
    """SUCCESS or FAILED from SQL audit's ``succeeded`` (a boolean or "true"/"false")."""
    if isinstance(value, str):
        value = {"true": True, "false": False}.get(value.strip().lower())
    if isinstance(value, bool):
        return "SUCCESS" if value else "FAILED"
    return None
