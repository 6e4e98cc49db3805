"""The Bicep form of `hubsight azure setup`: one template, the lines that deploy it in its header.

The template targets the resource group (the namespace, the hub, the policies, Defender's export);
the Activity Log's diagnostic setting lives on the subscription, so the template reaches it with a
nested deployment (Bicep's alternative, a module, would need a second file). Entra ID's setting
lives on the tenant: deploying to the tenant needs rights at the root scope ("/") that even Global
Administrators must elevate to get, so it stays the one ``az rest`` PUT of the CLI form.

Resource types and API versions, checked against Microsoft's template reference:
Microsoft.EventHub/namespaces (+ /eventhubs, /authorizationRules) 2024-01-01;
Microsoft.Insights/diagnosticSettings 2021-05-01-preview; Microsoft.Resources/deployments
2024-03-01; Microsoft.Security/automations 2023-12-01-preview.
"""

from __future__ import annotations

from hubsight.provision.azcli import (
    AzCommand,
    az,
    entra_command,
    listen_key_command,
    source_add_lines,
)
from hubsight.provision.plan import (
    ACTIVITY_LOG_CATEGORIES,
    DEFENDER_AUTOMATION,
    DEFENDER_POLICY,
    LISTEN_POLICY,
    ROOT_POLICY,
    SETTING_NAME,
    SetupPlan,
)

TEMPLATE_FILE = "hubsight.bicep"
_EVENTHUB_API = "2024-01-01"


def deploy_commands(plan: SetupPlan) -> list[AzCommand]:
    """The commands that deploy the template, in order: providers first, then the deployment."""
    providers = ["microsoft.insights", "Microsoft.EventHub"]
    if plan.defender:
        providers.append("Microsoft.Security")
    return [
        az("account set", subscription=plan.subscription),
        *(az("provider register", namespace=p, wait=None) for p in providers),
        az("group create", name=plan.resource_group, location=plan.location, output="none"),
        az(
            "deployment group create",
            resource_group=plan.resource_group,
            name="hubsight",
            template_file=TEMPLATE_FILE,
            output="none",
        ),
    ]


def commands(plan: SetupPlan) -> list[AzCommand]:
    """Every ``az`` command the output names (the tests check each against azure-cli's table)."""
    extra = [entra_command(plan)] if plan.entra else []
    return [*deploy_commands(plan), *extra, listen_key_command(plan)]


def _header(plan: SetupPlan) -> list[str]:
    lines = [
        f"// hubsight azure setup (Bicep): subscription {plan.subscription}",
        f"// -> Event Hubs namespace {plan.namespace}. Save this output as {TEMPLATE_FILE}; then,",
        "// signed in with `az login`, run in its folder:",
        "//",
        *(f"//   {c.render()}" for c in deploy_commands(plan)),
        "//",
        "// microsoft.insights is registered first: without it Azure refuses the Activity Log",
        '// export with "Create or update activity log profiles Failure". Deploying again is safe.',
    ]
    if plan.entra:
        lines += [
            "//",
            "// Entra ID's diagnostic setting is tenant-wide (P1 or P2 licence; Global or Security",
            "// Administrator); run this once too:",
            f"//   {entra_command(plan).render()}",
        ]
    return lines


def _footer(plan: SetupPlan) -> list[str]:
    return [
        "",
        "// Once deployed, add the source on the hubsight host (signed in with az; the connection",
        "// string goes from Azure into a variable, never onto a screen or a command line):",
        *(f"//   {line}" for line in source_add_lines(plan)),
    ]


def render(plan: SetupPlan) -> str:
    """The whole template, deployment lines in its header."""
    logs = [
        line
        for category in ACTIVITY_LOG_CATEGORIES
        for line in (
            "            {",
            f"              category: '{category}'",
            "              enabled: true",
            "            }",
        )
    ]
    body = [
        "",
        f"param location string = '{plan.location}'",
        f"param namespaceName string = '{plan.namespace}'",
        f"param hubName string = '{plan.hub}'",
        "",
        "// Standard tier: Basic has no Kafka endpoint (and no consumer groups of its own).",
        f"resource namespace 'Microsoft.EventHub/namespaces@{_EVENTHUB_API}' = {{",
        "  name: namespaceName",
        "  location: location",
        "  sku: {",
        "    name: 'Standard'",
        "    tier: 'Standard'",
        "    capacity: 1",
        "  }",
        "  properties: {",
        "    kafkaEnabled: true",
        "    minimumTlsVersion: '1.2'",
        "  }",
        "}",
        "",
        f"resource hub 'Microsoft.EventHub/namespaces/eventhubs@{_EVENTHUB_API}' = {{",
        "  parent: namespace",
        "  name: hubName",
        "  properties: {",
        "    partitionCount: 4",
        "  }",
        "}",
        "",
        "// What hubsight connects with: read only.",
        f"resource listen 'Microsoft.EventHub/namespaces/authorizationRules@{_EVENTHUB_API}' = {{",
        "  parent: namespace",
        f"  name: '{LISTEN_POLICY}'",
        "  properties: {",
        "    rights: [",
        "      'Listen'",
        "    ]",
        "  }",
        "}",
        "",
        "// The Activity Log's setting lives on the subscription: a nested deployment puts it",
        "// there. It sends with the namespace's own policy (a diagnostic setting needs Manage,",
        "// Send and Listen).",
        "resource activityLog 'Microsoft.Resources/deployments@2024-03-01' = {",
        "  name: 'hubsight-activity-log'",
        "  subscriptionId: subscription().subscriptionId",
        "  location: location",
        "  dependsOn: [",
        "    hub",
        "  ]",
        "  properties: {",
        "    mode: 'Incremental'",
        "    template: {",
        "      '$schema': 'https://schema.management.azure.com/schemas/2018-05-01/"
        "subscriptionDeploymentTemplate.json#'",
        "      contentVersion: '1.0.0.0'",
        "      resources: [",
        "        {",
        "          type: 'Microsoft.Insights/diagnosticSettings'",
        "          apiVersion: '2021-05-01-preview'",
        f"          name: '{SETTING_NAME}'",
        "          properties: {",
        "            eventHubAuthorizationRuleId: "
        f"'${{namespace.id}}/authorizationRules/{ROOT_POLICY}'",
        "            eventHubName: hubName",
        "            logs: [",
        *logs,
        "            ]",
        "          }",
        "        }",
        "      ]",
        "    }",
        "  }",
        "}",
    ]
    if plan.defender:
        body += _defender()
    return "\n".join([*_header(plan), *body, *_footer(plan)]) + "\n"


def _defender() -> list[str]:
    """Defender for Cloud's continuous export of alerts, sending with its own Send-only policy."""
    return [
        "",
        "// Defender for Cloud's alerts, exported continuously (alerts exist where a Defender",
        "// plan is on).",
        "resource defenderSend "
        f"'Microsoft.EventHub/namespaces/eventhubs/authorizationRules@{_EVENTHUB_API}' = {{",
        "  parent: hub",
        f"  name: '{DEFENDER_POLICY}'",
        "  properties: {",
        "    rights: [",
        "      'Send'",
        "    ]",
        "  }",
        "}",
        "",
        "resource defenderExport 'Microsoft.Security/automations@2023-12-01-preview' = {",
        f"  name: '{DEFENDER_AUTOMATION}'",
        "  location: location",
        "  properties: {",
        "    description: 'hubsight: Defender for Cloud alerts to the event hub'",
        "    isEnabled: true",
        "    scopes: [",
        "      {",
        "        description: 'the whole subscription'",
        "        scopePath: subscription().id",
        "      }",
        "    ]",
        "    sources: [",
        "      {",
        "        eventSource: 'Alerts'",
        "      }",
        "    ]",
        "    actions: [",
        "      {",
        "        actionType: 'EventHub'",
        "        eventHubResourceId: hub.id",
        "        connectionString: defenderSend.listKeys().primaryConnectionString",
        "      }",
        "    ]",
        "  }",
        "}",
    ]
