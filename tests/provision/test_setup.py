"""`hubsight azure setup`: the printed az commands against azure-cli's own command table.

Azure itself is not reachable here. What is checked: every ``az`` command printed exists in the
pinned azure-cli (``tests/data/az/commands.json``, extracted by ``scripts/extract-az-commands.py``),
every option it is given exists, every required option is given and limited values are allowed.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.parsing.azure import build_registry
from hubsight.provision import azcli, bicep
from hubsight.provision.plan import (
    ACTIVITY_LOG_CATEGORIES,
    ENTRA_DIAGNOSTIC_CATEGORIES,
    SetupPlan,
    entra_categories,
)

TABLE = json.loads((Path(__file__).parents[1] / "data" / "az" / "commands.json").read_text())
SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
ARGS = [
    "--subscription",
    SUB,
    "--resource-group",
    "rg-hubsight",
    "--namespace",
    "contoso-logs",
    "--location",
    "westeurope",
]
OPTION_SETS = [(False, False), (True, False), (False, True), (True, True)]
# Every az invocation in a printed text: at a line's start, in a Bicep comment, or in $(...).
AZ_CALL = re.compile(r"(?:^|\$\(|^//\s+)az ", re.MULTILINE)


def plan(
    entra: bool = True, defender: bool = True, hub: str = "insights-operational-logs"
) -> SetupPlan:
    """A plan for the example tenant."""
    return SetupPlan(
        subscription=SUB,
        resource_group="rg-hubsight",
        namespace="contoso-logs",
        location="westeurope",
        hub=hub,
        entra=entra,
        defender=defender,
    )


def table_problems(command: azcli.AzCommand) -> list[str]:
    """What azure-cli would refuse in one command (empty when it would parse it)."""
    name = " ".join(command.words)
    spec = TABLE["commands"].get(name)
    if spec is None:
        return [f"az {name}: no such command"]
    given = [flag for flag, _ in command.options]
    problems = [f"az {name}: no option {f}" for f in given if f not in spec["options"]]
    problems += [
        f"az {name}: required {group[0]} missing"
        for group in spec["required"]
        if not set(group) & set(given)
    ]
    for flag, value in command.options:
        allowed = next((v for k, v in spec["choices"].items() if k == flag), None)
        if allowed is not None and value not in allowed:
            problems.append(f"az {name}: {flag} {value!r} not one of {allowed}")
    return problems


@pytest.mark.parametrize(("entra", "defender"), OPTION_SETS)
@pytest.mark.parametrize("form", ["az", "bicep"])
def test_every_printed_az_command_is_in_the_az_table(
    form: str, entra: bool, defender: bool
) -> None:
    module = azcli if form == "az" else bicep
    p = plan(entra, defender)
    text = module.render(p)
    listed = module.commands(p)
    # Each command checked is printed verbatim, and nothing printed escapes the check.
    for command in listed:
        assert command.render() in text
    assert len(AZ_CALL.findall(text)) == len(listed)
    assert [problem for c in listed for problem in table_problems(c)] == []


def test_the_check_catches_a_wrong_command() -> None:
    assert table_problems(azcli.az("eventhubs namespace create", name="x")) == [
        "az eventhubs namespace create: required --resource-group missing"
    ]
    assert table_problems(
        azcli.az("eventhubs namespace create", resource_group="g", name="x", kafka="true")
    ) == ["az eventhubs namespace create: no option --kafka"]
    assert table_problems(azcli.az("rest", method="upsert", url="u")) != []
    assert table_problems(azcli.az("monitor log-profiles create", name="x")) == [
        "az monitor log-profiles create: no such command"
    ]


@pytest.mark.parametrize(("entra", "defender"), OPTION_SETS)
def test_the_script_is_valid_bash_and_registers_microsoft_insights_first(
    entra: bool, defender: bool
) -> None:
    text = azcli.render(plan(entra, defender))
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    register = text.index("az provider register --namespace microsoft.insights")
    assert register < text.index("az monitor diagnostic-settings")
    assert register < text.index("az eventhubs namespace create")
    assert ("microsoft.aadiam" in text) is entra
    assert ("az security automation" in text) is defender


def test_commands_are_all_create_or_update() -> None:
    """Idempotent: no command deletes, and each creating one is a PUT of a fixed name."""
    verbs = {" ".join(c.words).split()[-1] for c in azcli.commands(plan())}
    assert verbs <= {"set", "register", "create", "create_or_update", "list", "rest"}
    rest = [c for c in azcli.commands(plan()) if c.words == ("rest",)]
    assert [dict(c.options)["--method"] for c in rest] == ["put"]
    first, second = azcli.render(plan()), azcli.render(plan())
    assert first == second


def test_namespace_is_standard_tier_with_kafka() -> None:
    create = next(
        c for c in azcli.commands(plan()) if c.words == ("eventhubs", "namespace", "create")
    )
    assert dict(create.options)["--sku"] == "Standard"
    assert dict(create.options)["--enable-kafka"] == "true"
    assert "sku: {\n    name: 'Standard'" in bicep.render(plan())


def test_activity_log_streams_every_category_to_the_named_hub() -> None:
    setting = next(
        c
        for c in azcli.commands(plan(hub="my-hub"))
        if c.words[:2] == ("monitor", "diagnostic-settings")
    )
    options = dict(setting.options)
    assert options["--event-hub-name"] == "my-hub"
    auth_rule = options["--event-hub-auth-rule"]
    assert auth_rule is not None
    assert auth_rule.endswith(
        "/namespaces/contoso-logs/authorizationRules/RootManageSharedAccessKey"
    )
    assert [log["category"] for log in json.loads(options["--logs"] or "")] == list(
        ACTIVITY_LOG_CATEGORIES
    )
    text = bicep.render(plan(hub="my-hub"))
    assert all(f"category: '{c}'" in text for c in ACTIVITY_LOG_CATEGORIES)


def test_entra_streams_every_category_hubsight_parses() -> None:
    body = json.loads(azcli.entra_body(plan()))["properties"]
    streamed = {log["category"] for log in body["logs"]}
    claimed = {c.lower() for c in build_registry().claimed}
    parsed_entra = {c for c in ENTRA_DIAGNOSTIC_CATEGORIES if c.lower() in claimed}
    assert streamed == parsed_entra
    assert {
        "SignInLogs",
        "AuditLogs",
        "NonInteractiveUserSignInLogs",
        "ServicePrincipalSignInLogs",
        "ManagedIdentitySignInLogs",
        "RiskyUsers",
        "UserRiskEvents",
    } <= streamed
    # A hub name is always given: without one Entra makes one hub per category.
    assert body["eventHubName"] == "insights-operational-logs"
    assert "B2CRequestLogs" not in entra_categories()  # no parser: not streamed


def test_ends_with_the_source_add_line_without_the_secret() -> None:
    for text in (azcli.render(plan()), bicep.render(plan())):
        tail = text.rstrip().splitlines()[-4:]
        joined = "\n".join(tail)
        assert (
            "hubsight source add azure-contoso-logs --server contoso-logs.servicebus.windows.net"
            in joined
        )
        assert "--topic insights-operational-logs" in joined
        assert "--connection-string-env HUBSIGHT_CONNECTION_STRING" in joined
        assert (
            'HUBSIGHT_CONNECTION_STRING="$(az eventhubs namespace authorization-rule keys list'
            in joined
        )
        assert "SharedAccessKey=" not in text


def test_the_printed_source_add_line_is_accepted_by_hubsight(tmp_path: Path) -> None:
    line = azcli.source_add_lines(plan())[1].strip()
    args = shlex.split(line)[1:]
    secret = "Endpoint=sb://contoso-logs.servicebus.windows.net/;SharedAccessKeyName=hubsight-listen;SharedAccessKey=c2VjcmV0a2V5Cg=="
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path), *args], env={"HUBSIGHT_CONNECTION_STRING": secret}
    )
    assert result.exit_code == 0, result.output
    assert "c2VjcmV0" not in result.output


def test_bicep_resource_types_are_the_documented_ones() -> None:
    text = bicep.render(plan())
    types = set(re.findall(r"^resource \w+ '([^']+)'", text, re.MULTILINE))
    assert types == {
        "Microsoft.EventHub/namespaces@2024-01-01",
        "Microsoft.EventHub/namespaces/eventhubs@2024-01-01",
        "Microsoft.EventHub/namespaces/authorizationRules@2024-01-01",
        "Microsoft.EventHub/namespaces/eventhubs/authorizationRules@2024-01-01",
        "Microsoft.Resources/deployments@2024-03-01",
        "Microsoft.Security/automations@2023-12-01-preview",
    }
    assert "type: 'Microsoft.Insights/diagnosticSettings'" in text
    assert text.count("{") == text.count("}")
    assert text.count("[") == text.count("]")
    assert "defenderExport" not in bicep.render(plan(defender=False))


def test_cli_prints_both_formats() -> None:
    runner = CliRunner()
    az_out = runner.invoke(cli, ["azure", "setup", *ARGS, "--entra"])
    assert az_out.exit_code == 0
    assert az_out.output == azcli.render(plan(entra=True, defender=False))
    bicep_out = runner.invoke(cli, ["azure", "setup", *ARGS, "--defender", "--format", "bicep"])
    assert bicep_out.exit_code == 0
    assert bicep_out.output == bicep.render(plan(entra=False, defender=True))


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--subscription", "contoso", "--subscription 'contoso' is not a name Azure accepts"),
        ("--namespace", "ab", "--namespace 'ab' is not a name Azure accepts"),
        ("--namespace", "1contoso", "--namespace '1contoso' is not a name Azure accepts"),
        ("--location", "West Europe", "--location 'West Europe' is not a name Azure accepts"),
        ("--hub", "bad hub", "--hub 'bad hub' is not a name Azure accepts"),
        ("--resource-group", "rg.", "--resource-group 'rg.' is not a name Azure accepts"),
    ],
)
def test_names_azure_refuses_are_refused_here(flag: str, value: str, message: str) -> None:
    args = list(ARGS)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    result = CliRunner().invoke(cli, ["azure", "setup", *args])
    assert result.exit_code == 2
    assert f"error: {message}" in result.output
    assert "hint: use " in result.output


def test_namespace_length_edges() -> None:
    assert plan().namespace == "contoso-logs"
    SetupPlan(subscription=SUB, resource_group="g", namespace="a" * 6, location="westeurope")
    SetupPlan(subscription=SUB, resource_group="g", namespace="a" * 50, location="westeurope")
    for bad in ("a" * 5, "a" * 51, "abcde-"):
        with pytest.raises(Exception, match="is not a name Azure accepts"):
            SetupPlan(subscription=SUB, resource_group="g", namespace=bad, location="westeurope")
