"""Changes made on the command line, recorded in the audit trail as ``cli:<OS user>``.

A change made on the server's command line is a change like one made in the console: each
command that changes sources, accounts, tokens, rules, retention or triage records it here, once
the change is done. (Over the owner's socket the running service records it instead.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubsight.store.audit import AuditLog, cli_actor


def record_cli(
    data_dir: Path,
    action: str,
    target: str | None,
    *,
    changes: dict[str, list[Any]] | None = None,
    **details: Any,
) -> None:
    """Record a change made by this command in the audit trail."""
    if changes is not None:
        details["changes"] = changes
    AuditLog(data_dir).record(
        actor=cli_actor(), action=action, via="cli", target=target, details=details
    )
