"""Entra ID sign-ins: interactive, non-interactive, service principal, managed identity and ADFS.

Interactive user sign-ins and ADFS go to Ingress Authentication; the token-refresh and workload
sign-ins go to SSO Authentication with ``actor_type``. The event time is
``properties.createdDateTime`` (``time`` is when Azure processed the record, often minutes later).
Microsoft's own location for the address is used when the record carries it.
"""

from __future__ import annotations

import msgspec

from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import (
    EntraLocation,
    TolerantDecoder,
    as_int,
    embedded,
    entra_location,
    new_event,
    set_source,
    set_user,
)
from hubsight.parsing.base import RecordContext
from hubsight.parsing.errorcodes import AuthResult, result_for
from hubsight.parsing.event import Event, LogSet
from hubsight.parsing.timeparse import parse_time

# category -> (log set, actor type, interactive unless the record says otherwise)
SIGNIN_CATEGORIES: dict[str, tuple[LogSet, str, bool]] = {
    "SignInLogs": (LogSet.INGRESS_AUTHENTICATION, "user", True),
    "ADFSSignInLogs": (LogSet.INGRESS_AUTHENTICATION, "user", True),
    "NonInteractiveUserSignInLogs": (LogSet.SSO_AUTHENTICATION, "user", False),
    "ServicePrincipalSignInLogs": (LogSet.SSO_AUTHENTICATION, "service_principal", False),
    "MicrosoftServicePrincipalSignInLogs": (LogSet.SSO_AUTHENTICATION, "service_principal", False),
    "ManagedIdentitySignInLogs": (LogSet.SSO_AUTHENTICATION, "managed_identity", False),
}
_SERVICE = "Microsoft Entra ID"
_MFA_REQUIREMENT = "multiFactorAuthentication"
_FIRST_FACTOR_METHODS = frozenset({"password", "previously satisfied", "", "none"})


class _Status(msgspec.Struct):
    errorCode: int | str | None = None
    failureReason: str | None = None


class _Device(msgspec.Struct):
    deviceId: str | None = None
    operatingSystem: str | None = None
    browser: str | None = None
    trustType: str | None = None
    isCompliant: bool | None = None


class _AuthStep(msgspec.Struct):
    authenticationMethod: str | None = None
    succeeded: bool | None = None
    authenticationStepRequirement: str | None = None


class _MfaDetail(msgspec.Struct):
    authMethod: str | None = None


class _Properties(msgspec.Struct):
    createdDateTime: str | None = None
    userPrincipalName: str | None = None
    userId: str | None = None
    appId: str | None = None
    appDisplayName: str | None = None
    servicePrincipalName: str | None = None
    servicePrincipalId: str | None = None
    ipAddress: str | None = None
    status: _Status | None = None
    clientAppUsed: str | None = None
    userAgent: str | None = None
    deviceDetail: _Device | None = None
    location: EntraLocation | None = None
    correlationId: str | None = None
    conditionalAccessStatus: str | None = None
    isInteractive: bool | None = None
    riskLevelDuringSignIn: str | None = None
    riskLevelAggregated: str | None = None
    riskState: str | None = None
    resourceDisplayName: str | None = None
    authenticationDetails: list[_AuthStep] | None = None
    authenticationRequirement: str | None = None
    authenticationProtocol: str | None = None
    originalTransferMethod: str | None = None
    mfaDetail: _MfaDetail | None = None
    sessionId: str | None = None
    homeTenantId: str | None = None


class _GraphSignIn(_Properties):
    """A sign-in as Graph returns it: the object itself, no Azure Monitor envelope."""

    signInEventTypes: list[str] | None = None


class _SignIn(msgspec.Struct):
    time: str | None = None
    category: str | None = None
    operationName: str | None = None
    resultType: str | int | None = None
    resultDescription: str | None = None
    callerIpAddress: str | None = None
    correlationId: str | None = None
    tenantId: str | None = None
    resourceId: str | None = None
    identity: str | None = None
    location: str | None = None
    properties: _Properties | str | None = None


class SignInParser:
    """Normalizes the Entra ID sign-in categories (see ``SIGNIN_CATEGORIES``)."""

    categories = tuple(SIGNIN_CATEGORIES)

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip
        self._users = deps.users
        self._decoder = TolerantDecoder(_SignIn, probe="operationName")
        self._properties = TolerantDecoder(_Properties)
        self._graph = TolerantDecoder(_GraphSignIn)

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one sign-in record, with or without the Azure Monitor envelope."""
        head = self._decoder.decode(record)
        props: _Properties
        if head.category is None and head.properties is None and is_graph_signin(record):
            graph = self._graph.decode(record)
            head = _SignIn(correlationId=graph.correlationId)
            props = graph
            category = _graph_category(graph)
        else:
            found = head.properties
            if isinstance(found, _Properties):
                props = found
            else:
                props = embedded(found, self._properties) or _Properties()
            category = head.category or "SignInLogs"
        kind = SIGNIN_CATEGORIES.get(category)
        log_set, actor_type, interactive = kind if kind is not None else _kind_of(category)
        event = new_event(
            record,
            ctx,
            log_set=log_set,
            category=category,
            timestamp=parse_time(props.createdDateTime),
            azure_time=parse_time(head.time),
        )
        event.operation = head.operationName or "Sign-in activity"
        event.service = _SERVICE
        event.actor_type = actor_type
        status = props.status or _Status()
        code = as_int(status.errorCode)
        if code is None:
            code = as_int(head.resultType)
        event.error_code = code
        event.result = _result(code, head.resultType)
        if event.result != AuthResult.SUCCESS:
            event.failure_reason = status.failureReason or head.resultDescription or None
        if actor_type == "user":
            set_user(event, props.userPrincipalName or _upn_like(head.identity), ctx.default_domain)
            self._users.learn(props.userId, event.user)
            event.user_id = props.userId.lower() if props.userId else None
        event.application = props.appDisplayName or props.servicePrincipalName or None
        event.application_id = props.appId or None
        event.resource = props.resourceDisplayName or None
        event.client_app = props.clientAppUsed or None
        event.user_agent = props.userAgent or None
        event.is_interactive = (
            props.isInteractive if props.isInteractive is not None else interactive
        )
        event.authentication_requirement = _requirement(props.authenticationRequirement)
        event.authentication_protocol = _protocol(props)
        event.mfa_method = _mfa_method(props)
        event.conditional_access_status = props.conditionalAccessStatus or None
        event.risk_level = props.riskLevelDuringSignIn or props.riskLevelAggregated or None
        event.risk_state = props.riskState or None
        device = props.deviceDetail
        if device is not None:
            event.device_id = device.deviceId or None
            event.device_os = device.operatingSystem or None
            event.browser = device.browser or None
            event.device_trust = device.trustType or ("compliant" if device.isCompliant else None)
        event.session_id = props.sessionId or None
        event.correlation_id = head.correlationId or props.correlationId or None
        event.tenant_id = head.tenantId or props.homeTenantId or None
        event.resource_id = head.resourceId or None
        set_source(
            event,
            props.ipAddress or head.callerIpAddress,
            self._geoip,
            entra_location(props.location, head.location),
        )
        return event


def is_graph_signin(record: bytes) -> bool:
    """Whether a record is a bare Graph-shaped sign-in (no Azure Monitor envelope)."""
    return (
        b'"createdDateTime"' in record
        and b'"operationName"' not in record
        and (b'"clientAppUsed"' in record or b'"conditionalAccessStatus"' in record)
    )


# Graph's signInEventTypes (beta) name the log the sign-in would be exported to.
_GRAPH_EVENT_TYPES = {
    "interactiveuser": "SignInLogs",
    "noninteractiveuser": "NonInteractiveUserSignInLogs",
    "serviceprincipal": "ServicePrincipalSignInLogs",
    "managedidentity": "ManagedIdentitySignInLogs",
}


def _graph_category(sign_in: _GraphSignIn) -> str:
    for kind in sign_in.signInEventTypes or ():
        category = _GRAPH_EVENT_TYPES.get(kind.lower())
        if category is not None:
            return category
    return "NonInteractiveUserSignInLogs" if sign_in.isInteractive is False else "SignInLogs"


def _kind_of(category: str) -> tuple[LogSet, str, bool]:
    kind = SIGNIN_CATEGORIES.get(category)
    if kind is not None:
        return kind
    for name, value in SIGNIN_CATEGORIES.items():
        if name.lower() == category.lower():
            return value
    return SIGNIN_CATEGORIES["SignInLogs"]


def _protocol(props: _Properties) -> str | None:
    protocol = props.authenticationProtocol
    if protocol and protocol != "none":
        return protocol
    # Device-code sign-ins that refresh a device-code token say so only in the transfer method.
    if props.originalTransferMethod == "deviceCodeFlow":
        return "deviceCode"
    return None


def _result(code: int | None, result_type: str | int | None) -> AuthResult:
    if code is not None:
        return result_for(code)
    if isinstance(result_type, str) and result_type.lower() in ("success", "succeeded"):
        return AuthResult.SUCCESS
    return AuthResult.FAILED_OTHER


def _upn_like(identity: str | None) -> str | None:
    # ``identity`` is usually a display name; it only names the user when it is an address.
    return identity if identity and "@" in identity else None


def _requirement(value: str | None) -> str | None:
    if not value:
        return None
    if value == _MFA_REQUIREMENT or "multi" in value.lower():
        return "multi_factor"
    return "single_factor"


def _mfa_method(props: _Properties) -> str | None:
    for step in props.authenticationDetails or ():
        method = step.authenticationMethod or ""
        requirement = (step.authenticationStepRequirement or "").lower()
        if method.lower() not in _FIRST_FACTOR_METHODS and (
            "multi" in requirement or not requirement
        ):
            return method
    if props.mfaDetail is not None and props.mfaDetail.authMethod:
        return props.mfaDetail.authMethod
    return None
