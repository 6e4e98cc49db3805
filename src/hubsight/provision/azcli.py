"""The Azure CLI form of `hubsight azure setup`: one bash script, safe to run again.

Every resource has a fixed name and every command is a create-or-update (an ARM PUT), so a second
run changes nothing that is already right and repairs what is not. Each ``az`` call is built as
an ``AzCommand`` so the tests can check the very commands printed against azure-cli's own table.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from hubsight.provision.plan import (
    ACTIVITY_LOG_CATEGORIES,
    DEFENDER_AUTOMATION,
    DEFENDER_POLICY,
    LISTEN_POLICY,
    SETTING_NAME,
    SetupPlan,
    entra_categories,
)

# Entra ID's diagnostic settings have no az command of their own; this is their ARM endpoint.
ENTRA_API_VERSION = "2017-04-01"
CONNECTION_VARIABLE = "HUBSIGHT_CONNECTION_STRING"


class Shell(str):
    """A value the shell expands (``"$var"``): printed as written, not quoted."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class AzCommand:
    """One ``az`` invocation: its command words and its options in order."""

    words: tuple[str, ...]
    options: tuple[tuple[str, str | None], ...]

    def render(self) -> str:
        """The command as a shell line (options with a value quoted unless they are ``Shell``)."""
        parts = ["az", *self.words]
        for flag, value in self.options:
            parts.append(flag)
            if value is not None:
                parts.append(value if isinstance(value, Shell) else shlex.quote(value))
        return " ".join(parts)


def az(words: str, **options: str | None) -> AzCommand:
    """Build a command; ``resource_group='x'`` becomes ``--resource-group x``."""
    return AzCommand(
        tuple(words.split()),
        tuple((f"--{name.replace('_', '-')}", value) for name, value in options.items()),
    )


def _logs(categories: tuple[str, ...]) -> str:
    return json.dumps([{"category": c, "enabled": True} for c in categories], separators=(",", ":"))


def listen_key_command(plan: SetupPlan) -> AzCommand:
    """Reads the Listen policy's connection string (printed into a variable, never shown)."""
    return az(
        "eventhubs namespace authorization-rule keys list",
        resource_group=plan.resource_group,
        namespace_name=plan.namespace,
        name=LISTEN_POLICY,
        query="primaryConnectionString",
        output="tsv",
    )


def source_add_lines(plan: SetupPlan) -> list[str]:
    """The two lines that end the setup: add the source with the key read from Azure, test it."""
    read = listen_key_command(plan).render()
    return [
        f'{CONNECTION_VARIABLE}="$({read})" \\',
        f"  hubsight source add {plan.source_name} --server {plan.server} --topic {plan.hub} "
        f"--keep-unparsed --connection-string-env {CONNECTION_VARIABLE}",
        f"hubsight source test {plan.source_name}",
    ]


def entra_body(plan: SetupPlan) -> str:
    """The Entra ID diagnostic setting, as the JSON body of its ARM PUT."""
    body = {
        "properties": {
            "eventHubAuthorizationRuleId": plan.root_rule_id,
            "eventHubName": plan.hub,
            "logs": [{"category": c, "enabled": True} for c in entra_categories()],
        }
    }
    return json.dumps(body, separators=(",", ":"))


def entra_command(plan: SetupPlan) -> AzCommand:
    """The PUT that creates or updates Entra ID's diagnostic setting (tenant-wide)."""
    return az(
        "rest",
        method="put",
        url=(
            "https://management.azure.com/providers/microsoft.aadiam/diagnosticSettings/"
            f"{SETTING_NAME}?api-version={ENTRA_API_VERSION}"
        ),
        body=entra_body(plan),
        output="none",
    )


def _steps(plan: SetupPlan) -> list[tuple[str, list[AzCommand | str]]]:
    """The script's sections: a comment and the commands (or plain shell lines) under it."""
    rg, ns = plan.resource_group, plan.namespace
    providers = ["microsoft.insights", "Microsoft.EventHub"]
    if plan.defender:
        providers.append("Microsoft.Security")
    steps: list[tuple[str, list[AzCommand | str]]] = [
        ("Work in the subscription given.", [az("account set", subscription=plan.subscription)]),
        (
            "0. Resource providers first. Without microsoft.insights, Azure refuses the Activity\n"
            '   Log export with "Create or update activity log profiles Failure".',
            [az("provider register", namespace=p, wait=None) for p in providers],
        ),
        (
            "1. The Event Hubs namespace, Standard tier (Basic has no Kafka endpoint),\n"
            "   and the hub.",
            [
                az("group create", name=rg, location=plan.location, output="none"),
                az(
                    "eventhubs namespace create",
                    resource_group=rg,
                    name=ns,
                    location=plan.location,
                    sku="Standard",
                    enable_kafka="true",
                    minimum_tls_version="1.2",
                    output="none",
                ),
                az(
                    "eventhubs eventhub create",
                    resource_group=rg,
                    namespace_name=ns,
                    name=plan.hub,
                    partition_count="4",
                    output="none",
                ),
            ],
        ),
        (
            "2. A policy that can only read (Listen): the one hubsight connects with.",
            [
                az(
                    "eventhubs namespace authorization-rule create",
                    resource_group=rg,
                    namespace_name=ns,
                    name=LISTEN_POLICY,
                    rights="Listen",
                    output="none",
                )
            ],
        ),
        (
            "3. The subscription's Activity Log, every category, into the hub (sent with the\n"
            "   namespace's RootManageSharedAccessKey: a diagnostic setting needs Manage, Send\n"
            "   and Listen).",
            [
                az(
                    "monitor diagnostic-settings subscription create",
                    name=SETTING_NAME,
                    location=plan.location,
                    event_hub_auth_rule=plan.root_rule_id,
                    event_hub_name=plan.hub,
                    logs=_logs(ACTIVITY_LOG_CATEGORIES),
                    output="none",
                )
            ],
        ),
    ]
    if plan.entra:
        steps.append(
            (
                "4. Entra ID's logs into the same hub (needs an Entra ID P1 or P2 licence, and\n"
                "   a Global or Security Administrator). Naming the hub keeps Entra from\n"
                "   creating one hub per category (insights-logs-signinlogs, ...).",
                [entra_command(plan)],
            )
        )
    if plan.defender:
        steps.append(
            (
                "5. Defender for Cloud's alerts exported continuously into the hub. Defender\n"
                "   sends with its own Send-only policy; its connection string goes through a\n"
                "   private temporary file, never the command line. Alerts exist only where a\n"
                "   Defender plan (the former Standard tier) is on.",
                [
                    az(
                        "eventhubs eventhub authorization-rule create",
                        resource_group=rg,
                        namespace_name=ns,
                        eventhub_name=plan.hub,
                        name=DEFENDER_POLICY,
                        rights="Send",
                        output="none",
                    ),
                    'actions="$(mktemp)"; trap \'rm -f "$actions"\' EXIT',
                    _defender_actions_line(plan),
                    az(
                        "security automation create_or_update",
                        resource_group=rg,
                        name=DEFENDER_AUTOMATION,
                        location=plan.location,
                        scopes=json.dumps(
                            [
                                {
                                    "description": "hubsight: the whole subscription",
                                    "scopePath": f"/subscriptions/{plan.subscription}",
                                }
                            ],
                            separators=(",", ":"),
                        ),
                        sources='[{"eventSource":"Alerts"}]',
                        actions=Shell('@"$actions"'),
                        output="none",
                    ),
                ],
            )
        )
    return steps


def _defender_key_command(plan: SetupPlan) -> AzCommand:
    """Reads the connection string of Defender's Send policy."""
    return az(
        "eventhubs eventhub authorization-rule keys list",
        resource_group=plan.resource_group,
        namespace_name=plan.namespace,
        eventhub_name=plan.hub,
        name=DEFENDER_POLICY,
        query="primaryConnectionString",
        output="tsv",
    )


def _defender_actions_line(plan: SetupPlan) -> str:
    """Writes the Defender action (with the Send policy's key) to the private file."""
    key = _defender_key_command(plan).render()
    template = json.dumps(
        [{"actionType": "EventHub", "eventHubResourceId": plan.hub_id, "connectionString": "%s"}],
        separators=(",", ":"),
    )
    return f'(umask 077; printf {shlex.quote(template)} "$({key})" > "$actions")'


def commands(plan: SetupPlan) -> list[AzCommand]:
    """Every ``az`` command the script runs or prints, in order (the tests check each one)."""
    found = [c for _, lines in _steps(plan) for c in lines if isinstance(c, AzCommand)]
    if plan.defender:
        found.append(_defender_key_command(plan))
    return [*found, listen_key_command(plan)]


def render(plan: SetupPlan) -> str:
    """The whole bash script."""
    lines = [
        "#!/usr/bin/env bash",
        f"# hubsight azure setup: subscription {plan.subscription}",
        f"# -> Event Hubs namespace {plan.namespace}. Printed by hubsight, run by you: nothing has",
        "# touched Azure yet. Sign in with `az login`, read it, then `bash` it. Safe to run again:",
        "# every step creates or updates a resource of a fixed name.",
        "set -euo pipefail",
    ]
    for comment, body in _steps(plan):
        lines.append("")
        lines.extend(f"# {line}" for line in comment.splitlines())
        lines.extend(c.render() if isinstance(c, AzCommand) else c for c in body)
    if not plan.entra:
        lines += [
            "",
            "# 4. Entra ID's logs were not asked for (--entra): hubsight then sees no sign-ins.",
        ]
    lines += [
        "",
        "# Done in Azure. On the hubsight host (signed in with az too), add the source: the",
        "# connection string goes from Azure into a variable, never onto a screen or command line.",
        "cat <<'NEXT'",
        *source_add_lines(plan),
        "NEXT",
    ]
    return "\n".join(lines) + "\n"
