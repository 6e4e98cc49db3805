"""The simulated organisation: its people, their devices, its apps, workloads and Azure resources.

Everything is drawn from one seeded ``random.Random``, so a seed always builds the same tenant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hubsight.simulate.geo import AZURE_REGIONS, CITIES, City, azure_ip

# fmt: off
_FIRST = (
    "Anna", "Ben", "Carla", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Kira",
    "Lukas", "Maria", "Noah", "Olga", "Paul", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wei",
    "Yusuf", "Zoe", "Aiko", "Bram", "Chloe", "Dmitri", "Emma", "Farid", "Greta", "Hannah",
)
_LAST = (
    "Adams", "Becker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hoffmann", "Ito",
    "Jansen", "Kowalski", "Larsen", "Martin", "Nowak", "Olsen", "Patel", "Quinn", "Rossi",
    "Schmidt", "Tanaka", "Ueda", "Vogel", "Weber", "Xu", "Young", "Zimmermann", "Moreau",
)

# (operating system as Entra names it, browser, user agent, trust type)
_DESKTOPS = (
    ("Windows10", "Edge 131.0.0", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Azure AD joined"),
    ("Windows10", "Chrome 131.0.0", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Hybrid Azure AD joined"),
    ("MacOs", "Safari 18.1", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/18.1 Safari/605.1.15", ""),
    ("MacOs", "Chrome 131.0.0", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36"
     " (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Azure AD registered"),
)
_PHONES = (
    ("Ios", "Mobile Safari 18.1", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) "
     "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
     "Azure AD registered"),
    ("Android", "Chrome Mobile 131.0.6778", "Mozilla/5.0 (Linux; Android 14; SM-S921B) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
     "Azure AD registered"),
)
MFA_METHODS = (
    "Mobile app notification", "OATH verification code", "Text message",
    "Windows Hello for Business", "FIDO2 security key",
)

# First-party applications users sign in to: (display name, app id, resource name, resource id).
USER_APPS = (
    ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams Services",
     "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe"),
    ("OfficeHome", "4765445b-32c6-49b0-83e6-1d93765276ca", "Office 365 Exchange Online",
     "00000002-0000-0ff1-ce00-000000000000"),
    ("Microsoft Outlook", "5d661950-3475-41cd-a2c3-d671a3162bc1", "Office 365 Exchange Online",
     "00000002-0000-0ff1-ce00-000000000000"),
    ("Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000",
     "Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000"),
    ("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
     "Windows Azure Service Management API", "797f4846-ba00-4fd7-ba43-dac1f8f63013"),
    ("Microsoft Azure CLI", "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
     "Windows Azure Service Management API", "797f4846-ba00-4fd7-ba43-dac1f8f63013"),
    ("OneDrive SyncEngine", "ab9b8c07-8f02-4f72-87fa-80105867a763", "OneDrive",
     "00000003-0000-0ff1-ce00-000000000000"),
    ("Windows Sign In", "38aa3b87-a06d-4817-b275-7a316988d93b", "Windows Azure Active Directory",
     "00000002-0000-0000-c000-000000000000"),
)
GRAPH = ("Microsoft Graph", "00000003-0000-0000-c000-000000000000")
ARM = ("Windows Azure Service Management API", "797f4846-ba00-4fd7-ba43-dac1f8f63013")
KEY_VAULT = ("Azure Key Vault", "cfa8b339-82a2-471a-a3c9-0fc0be7a4093")
STORAGE = ("Azure Storage", "e406a681-f3d4-42a8-90b6-c2b029497af1")

_SP_NAMES = (
    "hr-sync-prod", "terraform-deployer", "backup-automation", "invoice-api",
    "github-actions-deploy", "grafana-reader", "servicenow-connector", "payroll-export",
    "siem-collector", "crm-integration",
)
_MI_NAMES = (
    "func-orders-prod", "vm-web-01", "vm-web-02", "aks-agentpool-prod", "logic-approvals",
    "id-data-pipeline", "vm-build-01", "func-thumbnails",
)
_MICROSOFT_SERVICES = (
    ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000"),
    ("Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000"),
    ("Microsoft Teams Services", "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe"),
)
# fmt: on


def new_id(rng: random.Random) -> str:
    """A random (but seed-determined) version-4 GUID."""
    # Formatted by hand: uuid.UUID is several times slower, and sign-ins carry six GUIDs each.
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


@dataclass(frozen=True, slots=True)
class Device:
    """A device a user signs in from."""

    device_id: str
    name: str
    operating_system: str
    browser: str
    user_agent: str
    trust_type: str

    @property
    def managed(self) -> bool:
        """Joined or registered devices are managed by the tenant."""
        return bool(self.trust_type)


@dataclass(frozen=True, slots=True)
class User:
    """A member (or guest) of the tenant."""

    object_id: str
    upn: str
    display_name: str
    home: City
    devices: tuple[Device, ...]
    mfa_method: str
    admin_roles: tuple[str, ...] = ()
    disabled: bool = False
    guest: bool = False


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    """An application registered in the tenant, or a managed identity of an Azure resource."""

    name: str
    app_id: str
    object_id: str
    credential_key_id: str
    resource: tuple[str, str]
    msi_resource_id: str | None = None
    # The few outbound addresses the workload runs from (its App Service or VM egress).
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AzureResource:
    """An Azure resource that Activity Log records name."""

    subscription_id: str
    resource_group: str
    provider: str
    kind: str
    name: str
    region: str

    @property
    def resource_id(self) -> str:
        """The ARM resource id, spelled as ARM writes it."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{self.provider}/{self.kind}/{self.name}"
        )


@dataclass(frozen=True, slots=True)
class Tenant:
    """The whole simulated organisation."""

    tenant_id: str
    domain: str
    headquarters: City
    office_ip: str
    users: tuple[User, ...]
    admins: tuple[User, ...]
    service_principals: tuple[ServicePrincipal, ...]
    managed_identities: tuple[ServicePrincipal, ...]
    # Service principals of Microsoft's first-party services in this tenant.
    microsoft_principals: tuple[ServicePrincipal, ...]
    subscriptions: tuple[str, ...]
    resources: tuple[AzureResource, ...]
    ca_policies: tuple[tuple[str, str, tuple[str, ...]], ...]
    hierarchy: str = field(default="")

    def resources_of(self, kind: str) -> list[AzureResource]:
        """The tenant's resources of one ARM type (``virtualMachines``, ``namespaces``, ...)."""
        return [r for r in self.resources if r.kind == kind]


_CA_POLICIES = (
    ("Require MFA for administrators", ("Mfa",)),
    ("Block legacy authentication", ("Block",)),
    (
        "Require compliant or hybrid joined device",
        ("RequireCompliantDevice", "RequireDomainJoinedDevice"),
    ),
    ("Sign-in risk: require MFA for medium and high", ("Mfa",)),
)


def _device(rng: random.Random, owner: str, phone: bool) -> Device:
    os_name, browser, agent, trust = rng.choice(_PHONES if phone else _DESKTOPS)
    prefix = "iPhone" if os_name == "Ios" else "Android" if phone else "LAPTOP"
    return Device(
        new_id(rng),
        f"{prefix}-{owner[:3].upper()}{rng.randrange(1000, 9999)}",
        os_name,
        browser,
        agent,
        trust,
    )


def build_tenant(rng: random.Random, *, users: int = 200, domain: str = "contoso.com") -> Tenant:
    """Build a tenant of ``users`` people (60 % at headquarters) with its apps and resources."""
    tenant_id = new_id(rng)
    headquarters = CITIES[3]  # Berlin: a European company with staff around the world.
    people: list[User] = []
    seen: set[str] = set()
    for index in range(users):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        local = f"{first}.{last}".lower()
        if local in seen:
            local = f"{local}{index}"
        seen.add(local)
        home = headquarters if rng.random() < 0.6 else rng.choice(CITIES)
        devices = [_device(rng, local, phone=False)]
        if rng.random() < 0.7:
            devices.append(_device(rng, local, phone=True))
        guest = index % 50 == 49
        upn = f"{local}_partner.example#EXT#@{domain}" if guest else f"{local}@{domain}"
        people.append(
            User(
                object_id=new_id(rng),
                upn=upn,
                display_name=f"{first} {last}",
                home=home,
                devices=tuple(devices),
                mfa_method=rng.choice(MFA_METHODS),
                admin_roles=(),
                disabled=index % 97 == 13,
                guest=guest,
            )
        )
    admin_count = max(2, users // 40)
    roles = (
        "Global Administrator",
        "Security Administrator",
        "User Administrator",
        "Application Administrator",
        "Privileged Role Administrator",
    )
    for slot in range(admin_count):
        user = people[slot * 7 % len(people)]
        if user.disabled or user.guest:
            continue
        people[people.index(user)] = User(
            user.object_id,
            user.upn,
            user.display_name,
            user.home,
            user.devices,
            user.mfa_method,
            (roles[slot % len(roles)],),
            False,
            False,
        )
    subscriptions = (new_id(rng), new_id(rng))
    resources = _resources(rng, subscriptions)
    on_premises = ("hr-sync-prod", "servicenow-connector", "payroll-export")
    office_ip = headquarters.ip(rng)
    service_principals = tuple(
        ServicePrincipal(
            name,
            new_id(rng),
            new_id(rng),
            new_id(rng),
            rng.choice((GRAPH, ARM, KEY_VAULT, STORAGE)),
            addresses=(office_ip,) if name in on_premises else (azure_ip(rng), azure_ip(rng)),
        )
        for name in _SP_NAMES
    )
    managed = tuple(
        ServicePrincipal(
            name,
            new_id(rng),
            new_id(rng),
            new_id(rng),
            rng.choice((ARM, KEY_VAULT, STORAGE)),
            msi_resource_id=(
                f"/subscriptions/{subscriptions[0]}/resourceGroups/rg-prod/providers/"
                + (
                    "Microsoft.Compute/virtualMachines/"
                    if name.startswith("vm-")
                    else "Microsoft.ManagedIdentity/userAssignedIdentities/"
                    if name.startswith("id-")
                    else "Microsoft.Web/sites/"
                )
                + name
            ),
        )
        for name in _MI_NAMES
    )
    return Tenant(
        tenant_id=tenant_id,
        domain=domain,
        headquarters=headquarters,
        office_ip=office_ip,
        users=tuple(people),
        admins=tuple(u for u in people if u.admin_roles),
        service_principals=service_principals,
        managed_identities=managed,
        microsoft_principals=tuple(
            ServicePrincipal(name, app_id, new_id(rng), "", GRAPH, addresses=(azure_ip(rng),))
            for name, app_id in _MICROSOFT_SERVICES
        ),
        subscriptions=subscriptions,
        resources=resources,
        ca_policies=tuple((new_id(rng), name, grants) for name, grants in _CA_POLICIES),
        hierarchy=f"{tenant_id}/{new_id(rng)}",
    )


def _resources(rng: random.Random, subscriptions: tuple[str, ...]) -> tuple[AzureResource, ...]:
    prod, dev = subscriptions
    region = AZURE_REGIONS[0][0]
    made = [
        AzureResource(prod, "rg-prod", "Microsoft.Compute", "virtualMachines", name, region)
        for name in ("vm-web-01", "vm-web-02", "vm-db-01", "vm-build-01")
    ]
    made += [
        AzureResource(
            dev, "rg-dev", "Microsoft.Compute", "virtualMachines", f"vm-dev-{i:02}", region
        )
        for i in range(1, 4)
    ]
    made += [
        AzureResource(
            prod, "rg-logging", "Microsoft.EventHub", "namespaces", "evhns-security-logs", region
        ),
        AzureResource(prod, "rg-prod", "Microsoft.EventHub", "namespaces", "evhns-orders", region),
        AzureResource(
            prod,
            "rg-prod",
            "Microsoft.Storage",
            "storageAccounts",
            f"stprodorders{rng.randrange(100, 999)}",
            region,
        ),
        AzureResource(
            prod,
            "rg-logging",
            "Microsoft.Storage",
            "storageAccounts",
            f"stlogarchive{rng.randrange(100, 999)}",
            region,
        ),
        AzureResource(prod, "rg-prod", "Microsoft.KeyVault", "vaults", "kv-prod-secrets", region),
        AzureResource(prod, "rg-prod", "Microsoft.Web", "sites", "func-orders-prod", region),
        AzureResource(
            prod, "rg-prod", "Microsoft.Network", "networkSecurityGroups", "nsg-web", region
        ),
        AzureResource(prod, "rg-prod", "Microsoft.Sql", "servers", "sql-orders-prod", region),
    ]
    return tuple(made)
