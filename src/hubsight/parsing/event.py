"""The normalized event: what every parser produces and what the store and searches see.

Field names are the contract of ``hubsight parse`` output, of the store's columns and of LEQL
keys. Absent values are ``None`` and are omitted when encoded.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec


class LogSet(StrEnum):
    """The log sets an Azure record can be normalized into."""

    INGRESS_AUTHENTICATION = "Ingress Authentication"
    SSO_AUTHENTICATION = "SSO Authentication"
    CLOUD_SERVICE_ADMIN_ACTIVITY = "Cloud Service Admin Activity"
    CLOUD_SERVICE_ACTIVITY = "Cloud Service Activity"
    THIRD_PARTY_ALERTS = "Third Party Alerts"
    FILE_ACCESS_ACTIVITY = "File Access Activity"
    FIREWALL_ACTIVITY = "Firewall Activity"
    UNPARSED_DATA = "Unparsed Data"


class Event(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One normalized event; ``raw`` is the record exactly as received."""

    timestamp: datetime
    log_set: LogSet
    log_name: str
    raw: msgspec.Raw
    # Set when raw is not UTF-8 text and was kept base64-encoded so that no byte is lost.
    raw_base64: bool | None = None
    parse_error: str | None = None
    repairs: list[str] | None = None

    # Where the record came from: its Kafka position (or file and line for imports) and its
    # index inside the message; together with log_name they make a stored event unique.
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    record_index: int | None = None

    azure_time: datetime | None = None
    enqueued_time: datetime | None = None
    received_time: datetime | None = None
    category: str | None = None
    operation: str | None = None
    result: str | None = None
    user: str | None = None
    account: str | None = None
    account_domain: str | None = None
    source_ip: str | None = None
    source_port: int | None = None
    # public / private / loopback / link_local / azure_internal / reserved: only public
    # addresses are geolocated, and detections skip the others.
    source_ip_scope: str | None = None
    geoip_country_code: str | None = None
    geoip_country_name: str | None = None
    geoip_city: str | None = None
    geoip_region: str | None = None
    geoip_latitude: float | None = None
    geoip_longitude: float | None = None
    geoip_organization: str | None = None
    service: str | None = None
    user_agent: str | None = None
    correlation_id: str | None = None
    tenant_id: str | None = None
    subscription_id: str | None = None
    resource_id: str | None = None

    # Authentication log sets.
    error_code: int | None = None
    failure_reason: str | None = None
    application: str | None = None
    application_id: str | None = None
    resource: str | None = None
    client_app: str | None = None
    is_interactive: bool | None = None
    authentication_requirement: str | None = None
    # The sign-in's token flow as Entra names it (deviceCode, ropc, saml20, wsFederation, ...);
    # None for the ordinary ("none") interactive and refresh flows.
    authentication_protocol: str | None = None
    mfa_method: str | None = None
    conditional_access_status: str | None = None
    risk_level: str | None = None
    risk_state: str | None = None
    device_id: str | None = None
    device_os: str | None = None
    browser: str | None = None
    device_trust: str | None = None
    actor_type: str | None = None
    session_id: str | None = None

    # Cloud Service Admin Activity.
    target_user: str | None = None
    target_resource: str | None = None
    target_type: str | None = None
    action: str | None = None
    modified_properties: msgspec.Raw | None = None
    initiated_by_app: str | None = None

    # Third Party Alerts.
    alert_id: str | None = None
    alert_name: str | None = None
    alert_type: str | None = None
    severity: str | None = None
    description: str | None = None
    vendor: str | None = None
    product: str | None = None
    status: str | None = None
    remediation: str | None = None
    entities: msgspec.Raw | None = None
    compromised_entity: str | None = None
    mitre_tactics: list[str] | None = None

    # Resource logs (Graph activity, Key Vault, Storage, AKS, SQL audit). ``user_id`` is the
    # caller's Entra object id, kept beside ``user`` because Graph and Key Vault often name no UPN.
    user_id: str | None = None
    service_principal_id: str | None = None
    http_method: str | None = None
    url: str | None = None
    http_status: int | None = None
    roles: list[str] | None = None
    scopes: list[str] | None = None
    signin_activity_id: str | None = None
    # SAS, AccountKey, OAuth, Anonymous (Storage); how the caller proved who it is.
    auth_type: str | None = None
    # The object inside the resource: a Key Vault secret/key/certificate name, a blob's path.
    object_name: str | None = None
    object_path: str | None = None
    namespace: str | None = None
    groups: list[str] | None = None
    # Every address a record names (AKS lists the client and the proxies it came through).
    source_ips: list[str] | None = None
    statement: str | None = None

    # Firewall Activity (``action`` is allow/deny/alert/...).
    destination_ip: str | None = None
    destination_port: int | None = None
    protocol: str | None = None
    rule: str | None = None
    fqdn: str | None = None
