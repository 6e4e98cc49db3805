"""``hubsight azure setup``: print the script that prepares Azure for hubsight (run by the user)."""

from __future__ import annotations

from typing import cast

import click

from hubsight.provision import Format, SetupPlan, render
from hubsight.provision.plan import DEFAULT_HUB


@click.group()
def azure() -> None:
    """The Azure side of connecting hubsight."""


@azure.command("setup")
@click.option("--subscription", required=True, help="Subscription ID whose Activity Log to stream.")
@click.option(
    "--resource-group", required=True, help="Resource group for the namespace (made if missing)."
)
@click.option("--namespace", required=True, help="Event Hubs namespace name (made if missing).")
@click.option("--location", required=True, help="Azure region, e.g. westeurope.")
@click.option(
    "--hub", default=DEFAULT_HUB, show_default=True, help="Event hub that receives the logs."
)
@click.option(
    "--entra", is_flag=True, help="Also stream Entra ID's logs (needs Entra ID P1 or P2)."
)
@click.option("--defender", is_flag=True, help="Also export Defender for Cloud's alerts.")
@click.option(
    "--format",
    "form",
    type=click.Choice(["az", "bicep"]),
    default="az",
    show_default=True,
    help="Azure CLI script, or a Bicep template with the lines that deploy it.",
)
def setup(
    subscription: str,
    resource_group: str,
    namespace: str,
    location: str,
    hub: str,
    entra: bool,
    defender: bool,
    form: str,
) -> None:
    """Print an idempotent script for the Azure side; hubsight itself runs nothing in Azure."""
    plan = SetupPlan(
        subscription=subscription,
        resource_group=resource_group,
        namespace=namespace,
        location=location,
        hub=hub,
        entra=entra,
        defender=defender,
    )
    click.echo(render(plan, cast(Format, form)), nl=False)
