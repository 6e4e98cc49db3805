"""Azure's own reports in the Activity Log: service and resource health, metric alerts, autoscale
actions and Advisor recommendations."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from hubsight.simulate.activity import platform_event
from hubsight.simulate.draft import Context, Draft, iso7
from hubsight.simulate.tenant import new_id

Builder = Callable[[datetime], list[Draft]]


def platform_builders(ctx: Context) -> dict[str, Builder]:
    """Background builders of the Activity Log categories Azure writes by itself."""
    rng = ctx.rng
    tenant = ctx.tenant
    vms = tenant.resources_of("virtualMachines")
    sub = tenant.subscriptions[0]

    def service_health(when: datetime) -> list[Draft]:
        service = rng.choice(("Virtual Machines", "Event Hubs", "Azure Storage", "App Service"))
        stage = rng.choice(("Active", "Active", "Resolved"))
        text = (
            f"Starting at {when:%H:%M} UTC on {when:%d %b %Y}, a subset of customers using "
            f"{service} in West Europe may experience intermittent failures. Engineers are "
            "investigating; the next update will follow within 60 minutes."
        )
        return [
            platform_event(
                ctx,
                when,
                "ServiceHealth",
                "Microsoft.ServiceHealth/incident/action",
                f"/subscriptions/{sub}",
                stage,
                "Warning" if stage == "Active" else "Informational",
                {
                    "title": f"{service} - West Europe - Mitigated"
                    if stage == "Resolved"
                    else f"{service} - West Europe",
                    "service": service,
                    "region": "West Europe",
                    "communication": text,
                    "incidentType": "Incident",
                    "trackingId": f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randrange(10)}"
                    f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}-{rng.randrange(100, 999)}",
                    "impactStartTime": iso7(when),
                    "impactedServices": json.dumps(
                        [
                            {
                                "ImpactedRegions": [{"RegionName": "West Europe"}],
                                "ServiceName": service,
                            }
                        ]
                    ),
                    "defaultLanguageTitle": f"{service} - West Europe",
                    "defaultLanguageContent": text,
                    "stage": stage,
                    "communicationId": str(rng.randrange(10**17, 10**18)),
                    "isHIR": "false",
                    "IsSynthetic": "False",
                    "impactType": "SubscriptionList",
                    "version": "0.1.1",
                },
            )
        ]

    def resource_health(when: datetime) -> list[Draft]:
        vm = rng.choice(vms)
        down = rng.random() < 0.5
        return [
            platform_event(
                ctx,
                when,
                "ResourceHealth",
                "Microsoft.Resourcehealth/healthevent/"
                + ("Activated" if down else "Resolved")
                + "/action",
                vm.resource_id,
                "Active" if down else "Resolved",
                "Critical" if down else "Informational",
                {
                    "title": "Virtual Machine health status changed to "
                    + ("unavailable" if down else "available"),
                    "details": "Virtual machine has experienced an unexpected event"
                    if down
                    else "The virtual machine is available",
                    "currentHealthStatus": "Unavailable" if down else "Available",
                    "previousHealthStatus": "Available" if down else "Unavailable",
                    "type": "Downtime",
                    "cause": "PlatformInitiated",
                },
            )
        ]

    def alert(when: datetime) -> list[Draft]:
        vm = rng.choice(vms)
        fired = rng.random() < 0.5
        rule = f"cpu-high-{vm.name}"
        rule_id = (
            f"/subscriptions/{vm.subscription_id}/resourceGroups/{vm.resource_group}/"
            f"providers/microsoft.insights/metricalerts/{rule}"
        )
        return [
            platform_event(
                ctx,
                when,
                "Alert",
                "Microsoft.Insights/metricAlerts/"
                + ("Activated" if fired else "Resolved")
                + "/Action",
                rule_id,
                "Activated" if fired else "Resolved",
                "Warning" if fired else "Informational",
                {
                    "RuleUri": rule_id,
                    "RuleName": rule,
                    "RuleDescription": "CPU above 85 % for 5 minutes",
                    "Threshold": "85",
                    "WindowSizeInMinutes": "5",
                    "Aggregation": "Average",
                    "Operator": "GreaterThan",
                    "MetricName": "Percentage CPU",
                    "MetricUnit": "Percent",
                    "AffectedResource": vm.resource_id,
                },
            )
        ]

    def autoscale(when: datetime) -> list[Draft]:
        old = rng.randrange(2, 6)
        new = old + (1 if rng.random() < 0.5 else -1)
        setting = (
            f"/subscriptions/{sub}/resourceGroups/rg-prod/providers/microsoft.insights/"
            "autoscalesettings/asp-orders-autoscale"
        )
        return [
            platform_event(
                ctx,
                when,
                "Autoscale",
                "Microsoft.Insights/AutoscaleSettings/"
                + ("Scaleup" if new > old else "Scaledown")
                + "/Action",
                setting,
                "Succeeded",
                "Informational",
                {
                    "Description": f"The autoscale engine attempting to scale resource "
                    f"'asp-orders' from {old} instances count to {new} instances count.",
                    "ResourceName": f"/subscriptions/{sub}/resourceGroups/rg-prod/providers/"
                    "Microsoft.Web/serverfarms/asp-orders",
                    "OldInstancesCount": str(old),
                    "NewInstancesCount": str(new),
                    "ActiveAutoscaleProfile": json.dumps(
                        {
                            "Name": "Auto created scale condition",
                            "Capacity": {"Minimum": "2", "Maximum": "8"},
                        }
                    ),
                    "LastScaleActionTime": when.strftime("%a, %d %b %Y %H:%M:%S GMT"),
                },
            )
        ]

    def recommendation(when: datetime) -> list[Draft]:
        vm = rng.choice(vms)
        name, category = rng.choice(
            (
                ("Right-size or shutdown underutilized virtual machines", "Cost"),
                ("Enable Azure Backup for your virtual machines", "HighAvailability"),
                ("Install endpoint protection on your machines", "Security"),
            )
        )
        return [
            platform_event(
                ctx,
                when,
                "Recommendation",
                "Microsoft.Advisor/recommendations/available/action",
                vm.resource_id,
                "Active",
                "Informational",
                {
                    "recommendationSchemaVersion": "1.0",
                    "recommendationCategory": category,
                    "recommendationImpact": rng.choice(("High", "Medium", "Low")),
                    "recommendationName": name,
                    "recommendationResourceLink": "https://portal.azure.com/#blade/"
                    f"Microsoft_Azure_Expert/RecommendationListBlade/recommendationTypeId/{new_id(rng)}",
                    "recommendationType": new_id(rng),
                },
            )
        ]

    return {
        "ServiceHealth": service_health,
        "ResourceHealth": resource_health,
        "Alert": alert,
        "Autoscale": autoscale,
        "Recommendation": recommendation,
    }
