"""Azure Resource Manager rules (Activity Log): RBAC, log tampering, destruction, secrets."""

from __future__ import annotations

from collections.abc import Sequence

from hubsight.detect.base import (
    Count,
    EventKind,
    Example,
    Finding,
    Minutes,
    RuleMeta,
    Severity,
    numbered,
)
from hubsight.detect.rules.operations import (
    OperationRule,
    admin_meta,
    failed,
    failed_result,
    target_of,
)
from hubsight.detect.rules.signals import (
    ADMIN_LOG_SETS,
    ThresholdRule,
    WindowConfig,
    admin,
    span_finding,
)
from hubsight.detect.windows import Entry
from hubsight.parsing.event import Event


class RbacOwnerAssigned(OperationRule):
    """Azure RBAC Owner or User Access Administrator assigned."""

    meta = admin_meta(
        "azure.rbac_owner_assigned",
        "Azure RBAC Owner/User Access Administrator assigned",
        Severity.HIGH,
        "T1098",
        "Check the scope and the assignee; remove the assignment if it was not requested.",
    )
    operations = frozenset({"MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE"})
    # Built-in role definition ids: Owner, User Access Administrator.
    default_markers = (
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    )
    example_raw = (
        b'{"properties":{"requestbody":"{\\"properties\\":{\\"roleDefinitionId\\":'
        b'\\"/providers/Microsoft.Authorization/roleDefinitions/'
        b'8e3af657-a8ff-443c-a75c-2fe8c4bcb635\\"}}"}}'
    )


class LogTampering(OperationRule):
    """Diagnostic settings or the Event Hub that carries logs deleted: the feed goes blind."""

    meta = admin_meta(
        "azure.log_tampering",
        "Diagnostic setting or Event Hub deleted",
        Severity.HIGH,
        "T1562.008",
        "Restore the diagnostic setting or hub at once; find who deleted it and why.",
    )
    operations = frozenset(
        {
            "MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/DELETE",
            "MICROSOFT.AADIAM/DIAGNOSTICSETTINGS/DELETE",
            "MICROSOFT.INSIGHTS/LOGPROFILES/DELETE",
            "MICROSOFT.EVENTHUB/NAMESPACES/DELETE",
            "MICROSOFT.EVENTHUB/NAMESPACES/EVENTHUBS/DELETE",
            "MICROSOFT.EVENTHUB/NAMESPACES/AUTHORIZATIONRULES/DELETE",
            "MICROSOFT.EVENTHUB/NAMESPACES/EVENTHUBS/AUTHORIZATIONRULES/DELETE",
        }
    )


class KeyVaultPurge(OperationRule):
    """A deleted Key Vault purged: unrecoverable destruction.

    The Activity Log's purge of the vault only: Key Vault's own AuditEvent records (``SecretPurge``,
    ``KeyPurge``, ``CertificatePurge``) are another log set, which ``graph.keyvault_objects_purged``
    reads; a deleted Managed HSM purged is ``keyvault.managed_hsm_purged``.
    """

    meta = admin_meta(
        "azure.keyvault_purge",
        "Key Vault purged",
        Severity.HIGH,
        "T1485",
        "Confirm the purge was planned; check what depended on the vault.",
    )
    operations = frozenset({"MICROSOFT.KEYVAULT/LOCATIONS/DELETEDVAULTS/PURGE/ACTION"})


class AccessKeysListed(OperationRule):
    """Storage account keys (or Event Hub shared access keys) listed or regenerated."""

    meta = admin_meta(
        "azure.access_keys_listed",
        "Storage account key listed or regenerated",
        Severity.MEDIUM,
        "T1552.004",
        "Confirm the caller needed the key; rotate it if not.",
    )
    operations = frozenset(
        {
            "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION",
            "MICROSOFT.STORAGE/STORAGEACCOUNTS/REGENERATEKEY/ACTION",
            "MICROSOFT.EVENTHUB/NAMESPACES/AUTHORIZATIONRULES/LISTKEYS/ACTION",
            "MICROSOFT.EVENTHUB/NAMESPACES/EVENTHUBS/AUTHORIZATIONRULES/LISTKEYS/ACTION",
            "MICROSOFT.EVENTHUB/NAMESPACES/AUTHORIZATIONRULES/REGENERATEKEYS/ACTION",
        }
    )


class VmRunCommand(OperationRule):
    """A command run on a VM through the Azure control plane."""

    meta = admin_meta(
        "azure.vm_run_command",
        "VM run-command executed",
        Severity.MEDIUM,
        "T1651",
        "Find the script that ran (the VM's run-command extension logs) and who ran it.",
    )
    operations = frozenset(
        {
            "MICROSOFT.COMPUTE/VIRTUALMACHINES/RUNCOMMAND/ACTION",
            "MICROSOFT.COMPUTE/VIRTUALMACHINES/RUNCOMMANDS/WRITE",
            "MICROSOFT.COMPUTE/VIRTUALMACHINESCALESETS/VIRTUALMACHINES/RUNCOMMAND/ACTION",
        }
    )


class ResourceGroupDeleted(OperationRule):
    """A whole resource group deleted."""

    meta = admin_meta(
        "azure.resource_group_deleted",
        "Resource group deleted",
        Severity.MEDIUM,
        "T1485",
        "Confirm the deletion was planned.",
    )
    operations = frozenset({"MICROSOFT.RESOURCES/SUBSCRIPTIONS/RESOURCEGROUPS/DELETE"})


class DeletionBurstConfig(WindowConfig):
    """Distinct resources deleted by one caller."""

    count: Count = 10
    window_minutes: Minutes = 10


class DeletionBurst(ThresholdRule[DeletionBurstConfig]):
    """One caller deleting many resources in minutes."""

    meta = RuleMeta(
        id="azure.deletion_burst",
        title="Burst of resource deletions",
        description="At least `count` distinct resources deleted by one caller within "
        "`window_minutes`.",
        severity=Severity.HIGH,
        technique="T1485",
        log_sets=ADMIN_LOG_SETS,
        runbook="Stop the caller (disable the account or app); restore from backups.",
        windowed=True,
    )
    config_type = DeletionBurstConfig
    distinct = True

    def reads(self, kind: EventKind) -> bool:
        """Deletions that succeeded."""
        return (
            super().reads(kind)
            and not failed_result(kind.result)
            and (kind.operation or "").upper().endswith("/DELETE")
        )

    def select(self, event: Event) -> tuple[str, str] | None:
        """Count deleted resources per caller."""
        operation = (event.operation or "").upper()
        if operation.endswith("/DELETE") and not failed(event):
            return event.user or event.initiated_by_app or "unknown", target_of(event)
        return None

    def describe(self, key: str, span: Sequence[Entry]) -> Finding:
        """Name the caller."""
        targets = sorted({e.value for e in span})
        return span_finding(
            key,
            f"{key} deleted {len(targets)} resources within minutes",
            span,
            user=key,
            context={"targets": targets[:50]},
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Ten deletions fire, also the tenth exactly ten minutes after the first; ten reads,
        nine deletions, or the tenth a second after the window closes, do not."""

        def op(i: int, verb: str, minute: float | None = None) -> Event:
            at = i / 2 if minute is None else minute
            return admin(at, f"MICROSOFT.COMPUTE/DISKS/{verb}", resource_id=f"/disk{i}")

        nine = [op(i, "DELETE") for i in range(9)]
        return (
            Example("ten deletions", numbered(op(i, "DELETE") for i in range(10)), fires=True),
            Example("ten reads", numbered(op(i, "READ") for i in range(10)), fires=False),
            Example("nine deletions", numbered(nine), fires=False),
            Example(
                "tenth deletion as the window closes",
                numbered([*nine, op(9, "DELETE", 10)]),
                fires=True,
            ),
            Example(
                "tenth deletion a second too late",
                numbered([*nine, op(9, "DELETE", 10 + 1 / 60)]),
                fires=False,
            ),
        )


RULES = (
    RbacOwnerAssigned,
    LogTampering,
    KeyVaultPurge,
    AccessKeysListed,
    VmRunCommand,
    ResourceGroupDeleted,
    DeletionBurst,
)
