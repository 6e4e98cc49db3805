"""Entra ID sign-in records (interactive, non-interactive, service principal, managed identity,
AD FS) in the shape Azure Monitor diagnostic settings deliver them to Event Hubs.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from hubsight.simulate.draft import Context, Draft, Record, iso7, iso_offset, later
from hubsight.simulate.geo import City, location
from hubsight.simulate.tenant import USER_APPS, Device, ServicePrincipal, User, new_id

# Microsoft's own tenant: owner of first-party applications and their service principals.
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"


# The failure reasons Entra writes for the error codes the simulator uses.
FAILURE_REASONS: dict[int, str] = {
    16000: "Either multiple user identities are available for the current request or selected "
    "account is not supported for the scenario.",
    50034: "The user account does not exist in the directory. To sign into this application, "
    "the account must be added to the directory.",
    50053: "The account is locked, you've tried to sign in too many times with an incorrect user "
    "ID or password.",
    50055: "The password is expired.",
    50057: "The user account is disabled.",
    50058: "Session information is not sufficient for single-sign-on.",
    50074: "Strong Authentication is required.",
    50076: "Due to a configuration change made by your administrator, or because you moved to a "
    "new location, you must use multi-factor authentication to access the resource.",
    50125: "Sign-in was interrupted due to a password reset or password registration entry.",
    50126: "Error validating credentials due to invalid username or password.",
    50133: "Session is invalid due to expiration or recent password change.",
    50140: "This error occurred due to 'Keep me signed in' interrupt when the user was signing-in.",
    50173: "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
    53003: "Access has been blocked by Conditional Access policies. The access policy does not "
    "allow token issuance.",
    65001: "The user or administrator has not consented to use the application.",
    70044: "The session has expired or is invalid due to sign-in frequency checks by conditional "
    "access.",
    500121: "Authentication failed during strong authentication request.",
    700016: "Application with identifier was not found in the directory.",
    7000215: "Invalid client secret provided. Ensure the secret being sent in the request is the "
    "client secret value, not the client secret ID.",
}

_PASSWORD_RESULTS = {
    0: "Correct password",
    50126: "Invalid username or password or Invalid on-premise username or password.",
    50053: "Account locked",
    50055: "Password expired",
    50057: "User account is disabled",
    50034: "User not found",
}
_MFA_FAILED = (
    "MFA denied; user declined the authentication",
    "MFA denied; user did not respond to mobile app notification",
)


@dataclass(frozen=True, slots=True)
class SignIn:
    """Who signed in to what from where, and how it ended."""

    user: User
    city: City
    ip: str
    asn: int
    device: Device | None
    app: tuple[str, str, str, str]
    code: int = 0
    interactive: bool = True
    mfa: bool = False
    client_app: str = "Browser"
    user_agent: str | None = None
    risk_level: str = "none"
    risk_events: tuple[str, ...] = ()
    # The OAuth flow when it is not the default one (``deviceCode``, ``ropc``).
    protocol: str | None = None
    # The session the sign-in continues (``sessions.Place``); None starts a new one, as an
    # unknown device does.
    session: str | None = None
    # The sign-in flow the record is a step of (see ``sign_in_flow``): its ``correlationId`` and
    # the ``id`` of its first record. None starts a flow of its own.
    correlation: str | None = None
    first_request: str | None = None


def token_id(rng: random.Random) -> str:
    """A ``uniqueTokenIdentifier``: the issued token's 16-byte ID, base64url without padding."""
    raw = rng.getrandbits(128).to_bytes(16, "little")
    return base64.urlsafe_b64encode(raw).decode()[:22]


def own_sign_in(
    ctx: Context, user: User, device: Device, when: datetime, interactive: bool, code: int = 0
) -> SignIn:
    """``user`` signing in on their own ``device``: in its session of the day, from where they
    are (see ``sessions``), to one of their everyday applications."""
    rng = ctx.rng
    place = ctx.sessions.place(ctx, user, device, when)
    if code == 0:
        ctx.sessions.signed_in(user, when)
    mobile = device.operating_system in ("Ios", "Android")
    return SignIn(
        user=user,
        city=user.home,
        ip=place.ip,
        asn=place.asn,
        device=device,
        app=rng.choice(USER_APPS),
        code=code,
        interactive=interactive,
        mfa=interactive and code == 0 and rng.random() < 0.4,
        client_app="Mobile Apps and Desktop clients" if mobile or not interactive else "Browser",
        session=place.session_id,
    )


def _envelope(
    ctx: Context, when: datetime, category: str, code: int, ip: str, correlation: str | None = None
) -> tuple[Record, datetime]:
    # Entra writes ``time`` when it processes the sign-in, seconds to minutes after it happened.
    processed = later(when, ctx.rng, 20, 240)
    record: Record = {
        "time": iso7(processed),
        "resourceId": f"/tenants/{ctx.tenant.tenant_id}/providers/Microsoft.aadiam",
        "operationName": "Sign-in activity",
        "operationVersion": "1.0",
        "category": category,
        "tenantId": ctx.tenant.tenant_id,
        "resultType": str(code),
        "resultSignature": "None",
    }
    if code:
        record["resultDescription"] = FAILURE_REASONS.get(code, "Other.")
    record.update(
        {
            "durationMs": 0,
            "callerIpAddress": ip,
            "correlationId": correlation or new_id(ctx.rng),
        }
    )
    return record, processed


def _ca_policies(ctx: Context, sign_in: SignIn) -> tuple[list[Record], str]:
    blocked = sign_in.code == 53003
    managed = bool(sign_in.device and sign_in.device.managed)
    risky = sign_in.risk_level != "none"
    key = ("ca", blocked, sign_in.mfa, managed, risky)
    cached: tuple[list[Record], str] | None = ctx.parts.get(key)
    if cached is not None:
        return cached
    policies: list[Record] = []
    status = "notApplied"
    for policy_id, name, grants in ctx.tenant.ca_policies:
        result = "notApplied"
        if blocked and "Block" in grants:
            result = "failure"
        elif ("Mfa" in grants and sign_in.mfa) or ("RequireCompliantDevice" in grants and managed):
            result = "success"
        elif "risk" in name and not risky:
            result = "notEnabled"
        if result == "failure":
            status = "failure"
        elif result == "success" and status != "failure":
            status = "success"
        applied = result in ("success", "failure")
        policies.append(
            {
                "id": policy_id,
                "displayName": name,
                "enforcedGrantControls": list(grants),
                "enforcedSessionControls": ["SignInFrequency"] if "admin" in name else [],
                "result": result,
                "conditionsSatisfied": 3 if applied else 1,
                "conditionsNotSatisfied": 0 if applied else 2,
            }
        )
    ctx.parts[key] = (policies, status)
    return policies, status


def _auth_details(ctx: Context, when: datetime, sign_in: SignIn) -> list[Record]:
    stamp = iso_offset(when)
    if not sign_in.interactive:
        return [
            {
                "authenticationStepDateTime": stamp,
                "authenticationMethod": "Previously satisfied",
                "succeeded": sign_in.code == 0,
                "authenticationStepResultDetail": "First factor requirement satisfied by claim "
                "in the token",
                "authenticationStepRequirement": "Primary authentication",
                "StatusSequence": 0,
                "RequestSequence": 0,
            }
        ]
    password_ok = sign_in.code not in _PASSWORD_RESULTS or sign_in.code == 0
    steps: list[Record] = [
        {
            "authenticationStepDateTime": stamp,
            "authenticationMethod": "Password",
            "authenticationMethodDetail": "Password in the cloud",
            "succeeded": password_ok,
            "authenticationStepResultDetail": _PASSWORD_RESULTS.get(
                sign_in.code, "Correct password"
            ),
            "authenticationStepRequirement": "Primary authentication",
            "StatusSequence": 0,
            "RequestSequence": 0,
        }
    ]
    if sign_in.mfa or sign_in.code in (500121, 50074, 50076):
        if sign_in.code == 500121:
            detail, ok = ctx.rng.choice(_MFA_FAILED), False
        elif sign_in.code in (50074, 50076):
            detail, ok = "MFA required in Azure AD", False
        else:
            detail, ok = "MFA successfully completed", True
        steps.append(
            {
                "authenticationStepDateTime": iso_offset(later(when, ctx.rng, 3, 40)),
                "authenticationMethod": sign_in.user.mfa_method,
                "authenticationMethodDetail": "Microsoft Authenticator",
                "succeeded": ok,
                "authenticationStepResultDetail": detail,
                "authenticationStepRequirement": "Multi-factor authentication",
                "StatusSequence": 0 if ok else 1,
                "RequestSequence": 1,
            }
        )
    return steps


def user_sign_in(ctx: Context, when: datetime, sign_in: SignIn) -> Draft:
    """A ``SignInLogs`` or ``NonInteractiveUserSignInLogs`` record."""
    rng = ctx.rng
    tenant = ctx.tenant
    user = sign_in.user
    category = "SignInLogs" if sign_in.interactive else "NonInteractiveUserSignInLogs"
    record, processed = _envelope(
        ctx, when, category, sign_in.code, sign_in.ip, sign_in.correlation
    )
    record["identity"] = user.display_name
    record["Level"] = 4
    record["location"] = sign_in.city.country
    app_name, app_id, resource_name, resource_id = sign_in.app
    policies, ca_status = _ca_policies(ctx, sign_in)
    device = sign_in.device
    status: Record = {"errorCode": sign_in.code}
    if sign_in.code:
        status["failureReason"] = FAILURE_REASONS.get(sign_in.code, "Other.")
    elif sign_in.mfa:
        status["additionalDetails"] = "MFA completed in Azure AD"
    sign_in_id = new_id(rng)
    risky = sign_in.risk_level != "none"
    record["properties"] = {
        "id": sign_in_id,
        "createdDateTime": iso_offset(when),
        "userDisplayName": user.display_name,
        "userPrincipalName": user.upn,
        "userId": user.object_id,
        "appId": app_id,
        "appDisplayName": app_name,
        "ipAddress": sign_in.ip,
        "status": status,
        "clientAppUsed": sign_in.client_app,
        "userAgent": sign_in.user_agent or (device.user_agent if device else ""),
        "deviceDetail": {
            "deviceId": device.device_id if device and device.managed else "",
            "displayName": device.name if device and device.managed else "",
            "operatingSystem": device.operating_system if device else "",
            "browser": device.browser if device else "",
            "isCompliant": bool(device and device.managed),
            "isManaged": bool(device and device.managed),
            "trustType": device.trust_type if device else "",
        },
        "location": location(sign_in.city),
        "correlationId": record["correlationId"],
        "conditionalAccessStatus": ca_status,
        "appliedConditionalAccessPolicies": policies,
        "authenticationContextClassReferences": [],
        # Microsoft: "the request identifier of the first request in the authentication
        # sequence", so every step of an interrupted flow names the flow's first record.
        "originalRequestId": sign_in.first_request or sign_in_id,
        "isInteractive": sign_in.interactive,
        "tokenIssuerName": "",
        "tokenIssuerType": "AzureAD",
        "authenticationProcessingDetails": [
            {"key": "Legacy TLS (TLS 1.0, 1.1, 3DES)", "value": "False"},
            {"key": "Is CAE Token", "value": "True"},
        ],
        "networkLocationDetails": [
            {"networkType": "trustedNamedLocation", "networkNames": ["Headquarters"]}
        ]
        if sign_in.ip == tenant.office_ip
        else [],
        "processingTimeInMilliseconds": rng.randrange(40, 400),
        "riskDetail": "none",
        "riskLevelAggregated": sign_in.risk_level,
        "riskLevelDuringSignIn": sign_in.risk_level,
        "riskState": "atRisk" if risky else "none",
        "riskEventTypes": list(sign_in.risk_events),
        "riskEventTypes_v2": list(sign_in.risk_events),
        "resourceDisplayName": resource_name,
        "resourceId": resource_id,
        "resourceTenantId": tenant.tenant_id,
        "homeTenantId": tenant.tenant_id,
        "authenticationDetails": _auth_details(ctx, when, sign_in),
        "authenticationRequirementPolicies": [
            {"requirementProvider": "multiConditionalAccess", "detail": "Conditional Access"}
        ]
        if sign_in.mfa
        else [],
        "authenticationRequirement": "multiFactorAuthentication"
        if sign_in.mfa or sign_in.code in (500121, 50074, 50076)
        else "singleFactorAuthentication",
        "alternateSignInName": user.upn,
        "signInIdentifier": user.upn,
        "servicePrincipalId": "",
        "userType": "Guest" if user.guest else "Member",
        "flaggedForReview": False,
        "isTenantRestricted": False,
        "autonomousSystemNumber": sign_in.asn,
        "crossTenantAccessType": "b2bCollaboration" if user.guest else "none",
        "privateLinkDetails": {},
        "ssoExtensionVersion": "",
        "uniqueTokenIdentifier": token_id(rng),
        "authenticationStrengths": [],
        "incomingTokenType": "none" if sign_in.interactive else "primaryRefreshToken",
        "authenticationProtocol": sign_in.protocol
        or (
            "ropc"
            if sign_in.client_app != "Browser" and not sign_in.client_app.startswith("Mobile")
            else "none"
        ),
        "appServicePrincipalId": None,
        "resourceServicePrincipalId": new_id(rng),
        "rngcStatus": 0,
        "signInTokenProtectionStatus": "none",
        "tokenProtectionStatusDetails": {
            "signInSessionStatus": "unbound",
            "signInSessionStatusCode": 1002,
        },
        "originalTransferMethod": "none",
        "isThroughGlobalSecureAccess": False,
        "globalSecureAccessIpAddress": "",
        "sessionId": sign_in.session or new_id(rng),
        "appOwnerTenantId": MICROSOFT_TENANT,
        "resourceOwnerTenantId": MICROSOFT_TENANT,
    }
    return Draft(when, processed, category, record, sign_in_id)


# Seconds from an interrupt to the next step of the same flow: the user answers the MFA prompt,
# the "Stay signed in?" question, or picks an account.
ANSWERED_AFTER: dict[int, tuple[float, float]] = {
    50074: (5.0, 60.0),
    50140: (1.0, 15.0),
    16000: (2.0, 20.0),
}
# Steps that come before MFA is done (a flow's steps after these have done it).
_BEFORE_MFA = frozenset({50074, 16000})


def sign_in_flow(
    ctx: Context, when: datetime, sign_in: SignIn, codes: Sequence[int]
) -> list[Draft]:
    """One interactive sign-in as Entra logs it: a record for each interrupt in ``codes`` (MFA
    required 50074, "Stay signed in?" 50140, account picker 16000) and one for how it ended,
    seconds apart, all with one ``correlationId``, ``sessionId`` and ``originalRequestId``.

    ``sign_in`` is the flow's last step; after a 50074 it ends with MFA done."""
    rng = ctx.rng
    unknown = [code for code in codes[:-1] if code not in ANSWERED_AFTER]
    if unknown:
        raise ValueError(
            f"{unknown[0]} does not interrupt a sign-in flow: use {list(ANSWERED_AFTER)}"
        )
    asked_mfa = 50074 in codes[:-1]
    last = replace(
        sign_in,
        correlation=sign_in.correlation or new_id(rng),
        session=sign_in.session or new_id(rng),
        mfa=sign_in.mfa or (asked_mfa and codes[-1] == 0),
    )
    drafts: list[Draft] = []
    for n, code in enumerate(codes):
        if n:
            when = later(when, rng, *ANSWERED_AFTER[codes[n - 1]])
        step = replace(
            last,
            code=code,
            mfa=last.mfa and code not in _BEFORE_MFA,
            first_request=drafts[0].key if drafts else None,
        )
        drafts.append(user_sign_in(ctx, when, step))
    return drafts


def service_principal_sign_in(
    ctx: Context,
    when: datetime,
    sp: ServicePrincipal,
    ip: str,
    code: int = 0,
    *,
    category: str = "ServicePrincipalSignInLogs",
) -> Draft:
    """A ``ServicePrincipalSignInLogs`` record: an app authenticating with its own credential
    (``MicrosoftServicePrincipalSignInLogs`` for Microsoft's first-party services)."""
    rng = ctx.rng
    microsoft = category == "MicrosoftServicePrincipalSignInLogs"
    record, processed = _envelope(ctx, when, category, code, ip)
    record["identity"] = sp.name
    record["Level"] = 4
    record["location"] = ctx.tenant.headquarters.country
    sign_in_id = new_id(rng)
    status: Record = {"errorCode": code}
    if code:
        status["failureReason"] = FAILURE_REASONS.get(code, "Other.")
    record["properties"] = {
        "id": sign_in_id,
        "createdDateTime": iso_offset(when),
        "appId": sp.app_id,
        "appDisplayName": sp.name,
        "servicePrincipalId": sp.object_id,
        "servicePrincipalName": sp.name,
        "ipAddress": ip,
        "location": location(ctx.tenant.headquarters),
        "status": status,
        "resourceDisplayName": sp.resource[0],
        "resourceId": sp.resource[1],
        "resourceServicePrincipalId": new_id(rng),
        "servicePrincipalCredentialKeyId": sp.credential_key_id,
        "servicePrincipalCredentialThumbprint": "",
        "clientCredentialType": "certificate" if microsoft else "clientSecret",
        "conditionalAccessStatus": "notApplied",
        "correlationId": record["correlationId"],
        "uniqueTokenIdentifier": token_id(rng),
        "federatedCredentialId": "",
        "isTenantRestricted": False,
        "appOwnerTenantId": MICROSOFT_TENANT if microsoft else ctx.tenant.tenant_id,
        "resourceOwnerTenantId": MICROSOFT_TENANT,
        "authenticationProcessingDetails": [
            {
                "key": "Azure AD App Authentication Library",
                "value": "Family: MSAL Library: MSAL.Python 1.31.0 Platform: Python",
            },
        ],
    }
    return Draft(when, processed, category, record, sign_in_id)


def managed_identity_sign_in(ctx: Context, when: datetime, mi: ServicePrincipal) -> Draft:
    """A ``ManagedIdentitySignInLogs`` record: an Azure resource getting a token for itself."""
    rng = ctx.rng
    record, processed = _envelope(ctx, when, "ManagedIdentitySignInLogs", 0, "")
    record["identity"] = mi.name
    record["Level"] = 4
    record["location"] = ""
    sign_in_id = new_id(rng)
    user_assigned = "userAssignedIdentities" in (mi.msi_resource_id or "")
    record["properties"] = {
        "id": sign_in_id,
        "createdDateTime": iso_offset(when),
        "appId": mi.app_id,
        "servicePrincipalId": mi.object_id,
        "servicePrincipalName": mi.name,
        "ipAddress": "",
        "location": {},
        "status": {"errorCode": 0},
        "resourceDisplayName": mi.resource[0],
        "resourceId": mi.resource[1],
        "managedServiceIdentity": {
            "msiType": "userAssigned" if user_assigned else "systemAssigned",
            "associatedResourceId": mi.msi_resource_id,
            "federatedTokenId": None,
            "federatedTokenIssuer": None,
        },
        "conditionalAccessStatus": "notApplied",
        "correlationId": record["correlationId"],
        "uniqueTokenIdentifier": token_id(rng),
        "servicePrincipalCredentialKeyId": "",
        "servicePrincipalCredentialThumbprint": "",
    }
    return Draft(when, processed, "ManagedIdentitySignInLogs", record, sign_in_id)


def adfs_sign_in(ctx: Context, when: datetime, user: User, code: int = 0) -> Draft:
    """An ``ADFSSignInLogs`` record: a federated sign-in relayed by AD FS Connect Health."""
    rng = ctx.rng
    city = user.home
    ip, asn = city.ip_and_asn(rng)
    record, processed = _envelope(ctx, when, "ADFSSignInLogs", code, ip)
    record["identity"] = user.display_name
    record["Level"] = 4
    record["location"] = city.country
    sign_in_id = new_id(rng)
    status: Record = {"errorCode": code}
    if code:
        status["failureReason"] = FAILURE_REASONS.get(code, "Other.")
    record["properties"] = {
        "id": sign_in_id,
        "createdDateTime": iso_offset(when),
        "userDisplayName": user.display_name,
        "userPrincipalName": user.upn,
        "userId": user.object_id,
        "appId": "",
        "appDisplayName": "",
        "ipAddress": ip,
        "status": status,
        "userAgent": user.devices[0].user_agent,
        "deviceDetail": {
            "deviceId": "",
            "operatingSystem": user.devices[0].operating_system,
            "browser": user.devices[0].browser,
        },
        "location": location(city),
        "correlationId": record["correlationId"],
        "isInteractive": True,
        "tokenIssuerName": f"http://sts.{ctx.tenant.domain}/adfs/services/trust",
        "tokenIssuerType": "ADFederationServices",
        "resourceDisplayName": "Microsoft Office 365 Identity Platform",
        "resourceId": "urn:federation:MicrosoftOnline",
        "authenticationDetails": [
            {
                "authenticationStepDateTime": iso_offset(when),
                "authenticationMethod": "Forms",
                "succeeded": code == 0,
                "authenticationStepRequirement": "Primary authentication",
                "authenticationStepResultDetail": _PASSWORD_RESULTS.get(code, "Correct password"),
            },
        ],
        "authenticationRequirement": "singleFactorAuthentication",
        "authenticationProtocol": "wsFederation",
        "incomingTokenType": "none",
        "clientAppUsed": "Browser",
        "autonomousSystemNumber": asn,
        "uniqueTokenIdentifier": token_id(rng),
    }
    return Draft(when, processed, "ADFSSignInLogs", record, sign_in_id)


def workload_ip(ctx: Context, sp: ServicePrincipal) -> str:
    """One of the few addresses an application's workload runs from."""
    return ctx.rng.choice(sp.addresses)
