"""Admin-activity rules: Entra directory changes and Azure Resource Manager operations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

import msgspec

from hubsight.detect.base import (
    Days,
    EventKind,
    Example,
    Finding,
    Minutes,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
    numbered,
)
from hubsight.detect.pim import Activation, activation, is_activation
from hubsight.detect.rules.operations import (
    OperationConfig,
    OperationRule,
    admin_meta,
    failed,
    failed_result,
)
from hubsight.detect.rules.signals import (
    ADMIN_LOG_SETS,
    admin,
    entry_of,
    refs,
)
from hubsight.detect.windows import Entry
from hubsight.parsing.event import Event

# Entra built-in roles that can take over the tenant or its data (Microsoft marks them
# "privileged"); matched by display name in the audit record.
PRIVILEGED_ROLES = (
    "Global Administrator",
    "Privileged Role Administrator",
    "Privileged Authentication Administrator",
    "Security Administrator",
    "Application Administrator",
    "Cloud Application Administrator",
    "Authentication Administrator",
    "Conditional Access Administrator",
    "Exchange Administrator",
    "SharePoint Administrator",
    "User Administrator",
    "Hybrid Identity Administrator",
    "Intune Administrator",
    "Helpdesk Administrator",
    "Partner Tier2 Support",
)
_PRIVILEGED = frozenset(role.lower() for role in PRIVILEGED_ROLES)


def privileged_activation(event: Event) -> Activation | None:
    """A successful PIM activation of one of ``PRIVILEGED_ROLES`` (the role's exact name)."""
    found = activation(event)
    return found if found is not None and found.role.lower() in _PRIVILEGED else None


class PrivilegedRoleGranted(OperationRule):
    """A privileged Entra role assigned (active, eligible or outside PIM).

    Not a user's activation of a role they are eligible for: PIM tenants activate admin roles
    every day by design; the unusual activation is ``entra.pim_activation_unusual``'s.
    """

    meta = admin_meta(
        "admin.privileged_role_granted",
        "Privileged directory role granted",
        Severity.HIGH,
        "T1098.003",
        "Confirm the grant with the approver; remove it and review the grantor if unexpected.",
    )
    operations = frozenset(
        {
            "Add member to role",
            "Add eligible member to role",
            "Add member to role outside of PIM (permanent)",
            "Add member to role in PIM completed (permanent)",
            "Add member to role in PIM completed (timebound)",
            "Add eligible member to role in PIM completed (permanent)",
            "Add eligible member to role in PIM completed (timebound)",
        }
    )
    default_markers = PRIVILEGED_ROLES
    example_raw = (
        b'{"properties":{"targetResources":[{"modifiedProperties":[{"displayName":'
        b'"Role.DisplayName","newValue":"\\"Global Administrator\\""}]}]}}'
    )


class PrivilegedGroupMember(OperationRule):
    """A member added to a group whose name marks it as privileged."""

    meta = admin_meta(
        "admin.privileged_group_member",
        "User added to privileged group",
        Severity.MEDIUM,
        "T1098",
        "Check the group's role assignments and whether the change was requested.",
    )
    operations = frozenset({"Add member to group", "Add owner to group"})
    default_markers = ("admin", "privileged", "tier0", "tier 0")
    markers_in_target = True


class AppCredentialAdded(OperationRule):
    """A new secret or certificate on an application or service principal."""

    meta = admin_meta(
        "admin.app_credential_added",
        "New credential added to an application",
        Severity.HIGH,
        "T1098.001",
        "Confirm with the app owner; remove the credential and review the app's sign-ins if "
        "unexpected.",
    )
    operations = frozenset(
        {
            "Add service principal credentials",
            "Update application – Certificates and secrets management",
            "Update application - Certificates and secrets management",
        }
    )


# Graph permissions that amount to tenant or mailbox takeover when granted to an app.
HIGH_PRIVILEGE_PERMISSIONS = (
    "RoleManagement.ReadWrite.Directory",
    "AppRoleAssignment.ReadWrite.All",
    "Application.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Mail.ReadWrite",
    "Mail.Send",
    "MailboxSettings.ReadWrite",
    "Files.ReadWrite.All",
    "Sites.FullControl.All",
    "User.ReadWrite.All",
    "full_access_as_app",
)


class HighPrivilegeConsent(OperationRule):
    """Consent granted to an application for high-privilege permissions."""

    meta = admin_meta(
        "admin.high_privilege_consent",
        "Consent to application with high-privilege permissions",
        Severity.HIGH,
        "T1528",
        "Review the app and its publisher; revoke the grant if it is not a known business app.",
    )
    operations = frozenset(
        {
            "Consent to application",
            "Add delegated permission grant",
            "Add app role assignment to service principal",
        }
    )
    default_markers = HIGH_PRIVILEGE_PERMISSIONS
    example_raw = (
        b'{"properties":{"targetResources":[{"modifiedProperties":[{"displayName":'
        b'"ConsentAction.Permissions","newValue":"Scope: Mail.ReadWrite"}]}]}}'
    )


class FederationChanged(OperationRule):
    """Domain authentication or federation settings changed (a golden SAML path)."""

    meta = admin_meta(
        "admin.federation_changed",
        "Domain federation settings changed",
        Severity.HIGH,
        "T1484.002",
        "Verify the change with the identity team; a rogue federation lets anyone sign in.",
    )
    operations = frozenset(
        {
            "Set domain authentication",
            "Set federation settings on domain",
            "Update domain",
            "Add unverified domain",
        }
    )


class ConditionalAccessWeakened(OperationRule):
    """A conditional access policy deleted, or updated to disabled."""

    meta = admin_meta(
        "admin.conditional_access_disabled",
        "Conditional access policy disabled or deleted",
        Severity.HIGH,
        "T1556",
        "Restore the policy; ask the actor why it was turned off.",
    )
    operations = frozenset(
        {
            "Delete conditional access policy",
            "Update conditional access policy",
            "Delete policy",
            "Update policy",
        }
    )
    unconditional = frozenset({"Delete conditional access policy", "Delete policy"})
    default_markers = ('\\"state\\":\\"disabled', '"state":"disabled')
    example_raw = (
        b'{"properties":{"targetResources":[{"modifiedProperties":[{"displayName":'
        b'"ConditionalAccessPolicy","newValue":"{\\"state\\":\\"disabled\\"}"}]}]}}'
    )


class MfaChangeConfig(RuleConfig):
    """Who counts as privileged besides users seen receiving a privileged role."""

    privileged_users: tuple[str, ...] = ()
    remember_days: Days = 90


_MFA_OPERATIONS = frozenset(
    {
        "user registered security info",
        "user deleted security info",
        "user changed default security info",
        "admin registered security info",
        "admin deleted security info",
        "admin updated security info",
        "reset password (by admin)",
    }
)


class PrivilegedMfaChanged(Rule[MfaChangeConfig]):
    """MFA or authentication methods changed for a privileged user."""

    meta = RuleMeta(
        id="admin.privileged_mfa_changed",
        title="Authentication methods changed for a privileged user",
        description="Security info (MFA methods) registered, changed or deleted for a user in "
        "`privileged_users` or seen receiving a privileged role (granted, or activated in PIM) in "
        "`remember_days`. The alert cites the latest such role grant beside the change.",
        severity=Severity.HIGH,
        technique="T1556.006",
        log_sets=ADMIN_LOG_SETS,
        runbook="Call the admin on a known number; revert the method if they did not change it.",
        windowed=True,
    )
    config_type = MfaChangeConfig

    def __init__(self, config: MfaChangeConfig) -> None:
        super().__init__(config)
        self._roles = PrivilegedRoleGranted(OperationConfig())
        self._privileged = frozenset(u.lower() for u in config.privileged_users)

    def retention(self) -> timedelta:
        """Role grants are remembered for ``remember_days``."""
        return timedelta(days=self.config.remember_days)

    def reads(self, kind: EventKind) -> bool:
        """Role grants and activations, method changes and user updates that succeeded."""
        operation = (kind.operation or "").lower()
        return self._roles.reads(kind) or (
            super().reads(kind)
            and not failed_result(kind.result)
            and (
                operation in _MFA_OPERATIONS
                or operation == "update user"
                or is_activation(kind.operation)
            )
        )

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Remember privileged grants; fire on a method change for a privileged user."""
        target = event.target_user or event.user
        if not target or failed(event):
            return
        operation = (event.operation or "").lower()
        # A user who activated a privileged role in PIM holds it as much as one granted it.
        if privileged_activation(event) is not None or any(
            True for _ in self._roles.evaluate(event, ctx)
        ):
            kind = "role"
        elif operation in _MFA_OPERATIONS or (operation == "update user" and _touches_mfa(event)):
            kind = "mfa"
        else:
            return
        window = ctx.window(target)
        entry = entry_of(event, kind)
        if not window.add(entry):
            return
        span = self.config.remember_days * 86400.0
        if kind == "role":
            # A grant arriving late makes earlier-processed method changes privileged ones.
            changes = [e for e in window.between(entry.ts, entry.ts + span) if e.value == "mfa"]
        elif target in self._privileged or _latest_grant(window.between(entry.ts - span, entry.ts)):
            changes = [entry]
        else:
            changes = []
        for change in changes:
            # The grant that made the user privileged is evidence too: the analyst sees why the
            # change matters, and who granted the role, beside the change itself.
            grant = _latest_grant(window.between(change.ts - span, change.ts))
            yield Finding(
                entity=target,
                title=f"Authentication methods of privileged user {target} changed",
                at=change.ref.timestamp,
                evidence=[change.ref] if grant is None else [grant.ref, change.ref],
                user=target,
                source_ip=event.source_ip if change is entry else None,
            )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """A method change after a Global Administrator grant fires; for others it does not."""
        grant = admin(
            0,
            "Add member to role",
            target_user="root@contoso.com",
            raw=PrivilegedRoleGranted.example_raw,
        )

        def change(user: str, minute: float = 30) -> Event:
            return admin(minute, "User registered security info", user=user, target_user=user)

        # The grant is remembered for ``remember_days`` (90) and not a second longer.
        remembered = 90 * 1440
        return (
            Example("privileged user", numbered([grant, change("root@contoso.com")]), fires=True),
            Example("ordinary user", numbered([grant, change("bob@contoso.com")]), fires=False),
            Example(
                "change on the last day the grant is remembered",
                numbered([grant, change("root@contoso.com", remembered)]),
                fires=True,
            ),
            Example(
                "change a second after the grant is forgotten",
                numbered([grant, change("root@contoso.com", remembered + 1 / 60)]),
                fires=False,
            ),
        )


def _latest_grant(entries: Iterable[Entry]) -> Entry | None:
    """The last privileged role grant among a user's entries (in event-time order)."""
    grants = [e for e in entries if e.value == "role"]
    return grants[-1] if grants else None


def _touches_mfa(event: Event) -> bool:
    if event.modified_properties is None:
        return False
    return b"strongauthentication" in memoryview(event.modified_properties).tobytes().lower()


class GuestPromotedConfig(RuleConfig):
    """How long after the invitation a promotion still counts."""

    within_days: Days = 30
    dedup_minutes: Minutes = 1440


_GUEST_TO_MEMBER = (b"guest", b"member")


class GuestPromoted(Rule[GuestPromotedConfig]):
    """A guest invited, then turned into a member (or given a role) of the tenant."""

    meta = RuleMeta(
        id="admin.guest_promoted",
        title="Guest invited then promoted",
        description="A user invited as a guest whose userType was changed to Member within "
        "`within_days`.",
        severity=Severity.HIGH,
        technique="T1098",
        log_sets=ADMIN_LOG_SETS,
        runbook="Confirm the business need; revert the user type if there is none.",
        windowed=True,
    )
    config_type = GuestPromotedConfig

    def retention(self) -> timedelta:
        """Invitations are remembered for ``within_days``."""
        return timedelta(days=self.config.within_days)

    def reads(self, kind: EventKind) -> bool:
        """Invitations and user updates that succeeded."""
        return (
            super().reads(kind)
            and not failed_result(kind.result)
            and (kind.operation or "").lower() in ("invite external user", "update user")
        )

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Pair each promotion with an earlier invitation of the same user."""
        operation = (event.operation or "").lower()
        target = event.target_user
        if not target or failed(event):
            return
        if operation == "invite external user":
            kind = "I"
        elif operation == "update user" and self._promoted(event):
            kind = "P"
        else:
            return
        window = ctx.window(target)
        entry = entry_of(event, kind)
        if not window.add(entry):
            return
        span = self.config.within_days * 86400.0
        lo, hi = (entry.ts - span, entry.ts) if kind == "P" else (entry.ts, entry.ts + span)
        for other in window.between(lo, hi):
            if other.value == kind:
                continue
            invite, promotion = (other, entry) if kind == "P" else (entry, other)
            yield Finding(
                entity=target,
                title=f"Guest {target} was invited and then made a member",
                at=promotion.ref.timestamp,
                evidence=refs([invite, promotion]),
                user=target,
                source_ip=event.source_ip,
            )

    @staticmethod
    def _promoted(event: Event) -> bool:
        if event.modified_properties is None:
            return False
        text = memoryview(event.modified_properties).tobytes().lower()
        return b"usertype" in text and all(word in text for word in _GUEST_TO_MEMBER)

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """Invite then promotion fires, also ``within_days`` (30) later; a promotion alone,
        or one a second past the thirty days, does not."""
        promoted = b'[{"displayName":"UserType","oldValue":"Guest","newValue":"Member"}]'
        invite = admin(0, "Invite external user", target_user="eve@fabrikam.com")

        def promote(minute: float) -> Event:
            return admin(
                minute,
                "Update user",
                target_user="eve@fabrikam.com",
                modified_properties=msgspec.Raw(promoted),
            )

        last_day = 30 * 1440
        return (
            Example("invite then promote", numbered([invite, promote(60)]), fires=True),
            Example("promotion alone", numbered([promote(60)]), fires=False),
            Example(
                "promotion thirty days after", numbered([invite, promote(last_day)]), fires=True
            ),
            Example(
                "promotion thirty days and a second after",
                numbered([invite, promote(last_day + 1 / 60)]),
                fires=False,
            ),
        )


RULES = (
    PrivilegedRoleGranted,
    PrivilegedGroupMember,
    AppCredentialAdded,
    HighPrivilegeConsent,
    FederationChanged,
    ConditionalAccessWeakened,
    PrivilegedMfaChanged,
    GuestPromoted,
)
