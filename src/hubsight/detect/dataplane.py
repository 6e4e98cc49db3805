"""What data-plane requests and sign-ins teach the baselines, beside the per-user ones.

The engine calls ``feed`` for every successful event after the rules saw it, so a rule asking
"seen before?" of a baseline learns about an event only from events before it (by event time:
``Seen`` keeps the answers right in any arrival order). Subjects are prefixed ``data:`` and so
never meet a user's (lower-cased UPN) or a service principal's (``sp:<app id>``):

    data:mail                 applications that read mail through Microsoft Graph (kind ``app``)
    data:files:m365           applications that downloaded OneDrive/SharePoint files (``app``)
    data:files:<account>      applications that read blobs or files of a storage account (``app``)
    data:vault:<vault>        identities that read a secret of a key vault (``identity``)
    data:net:<network>        a network (IPv4 /24, IPv6 /48) a successful sign-in came from
    data:tenant               any successful sign-in at all, the tenant's address history

The tenant's addresses are the networks of its successful sign-ins (its users' and its own
service principals'; Microsoft's first-party ones are not the tenant's), one baseline each, so a
busy tenant saves only the networks a batch touched.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from hubsight.detect.baseline import UserBaseline
from hubsight.detect.state import EngineState
from hubsight.parsing.event import Event, LogSet

GRAPH = "MicrosoftGraphActivityLogs"
KEY_VAULT = "AuditEvent"
STORAGE_READ = "StorageRead"
DATA_PLANE = frozenset({GRAPH, KEY_VAULT, STORAGE_READ})
_SIGNINS = frozenset({LogSet.INGRESS_AUTHENTICATION, LogSet.SSO_AUTHENTICATION})
# Microsoft's own services signing in to the tenant: their addresses are not the tenant's.
_FIRST_PARTY = "MicrosoftServicePrincipalSignInLogs"
TENANT = "data:tenant"
SIGNIN = "signin"

# Microsoft Graph's mail API (list/get messages, mail folders, attachments, MIME content) and
# driveItem downloads (".../content", also "root:/path:/content"), for a user or for anyone.
_MAIL = re.compile(r"^/(?:v1\.0|beta)/(?:me|users/[^/]+)/(?:messages|mailfolders)(?:[/(]|$)", re.I)
_DRIVE_CONTENT = re.compile(
    r"^/(?:v1\.0|beta)/(?:me|users/[^/]+|groups/[^/]+|sites/[^/]+|drives/[^/]+|shares/[^/]+)"
    r"/.*/content$",
    re.I,
)
# Storage operations that return an object's content (Blob service, Azure Files).
_STORAGE_READS = frozenset({"getblob", "getfile"})


class Sighting(NamedTuple):
    """One thing a data-plane request shows: ``value`` of ``kind`` seen for ``subject``."""

    subject: str
    kind: str
    value: str
    # How the value reads in an alert (a UPN, an application id).
    label: str


def sighting(event: Event) -> Sighting | None:
    """What a successful data-plane request shows, if it is one the baselines learn from."""
    if event.result != "SUCCESS":
        return None
    category = event.category
    if category == GRAPH:
        return _graph(event)
    if category == KEY_VAULT:
        return _secret_read(event)
    if category == STORAGE_READ:
        return _storage_read(event)
    return None


def _graph(event: Event) -> Sighting | None:
    app, url = event.application_id, event.url
    if not app or not url or event.http_method != "GET":
        return None
    path = urlsplit(url).path
    if _MAIL.match(path):
        return Sighting("data:mail", "app", app, app)
    if _DRIVE_CONTENT.match(path):
        return Sighting("data:files:m365", "app", app, app)
    return None


def _secret_read(event: Event) -> Sighting | None:
    vault = event.target_resource
    if (event.operation or "").lower() != "secretget" or not vault:
        return None
    who = event.user or event.user_id or event.service_principal_id or event.application_id
    if not who:
        return None
    return Sighting(f"data:vault:{vault.lower()}", "identity", who, who)


def _storage_read(event: Event) -> Sighting | None:
    app, account = event.application_id, event.target_resource
    if not app or not account or (event.operation or "").lower() not in _STORAGE_READS:
        return None
    return Sighting(f"data:files:{account.lower()}", "app", app, app)


def network(ip: str) -> str:
    """The network an address is counted in: its IPv4 /24 or IPv6 /48."""
    if ":" not in ip:
        head, _, _ = ip.rpartition(".")
        return f"{head}.0/24"
    return str(ipaddress.ip_network(f"{ip}/48", strict=False))


def network_subject(net: str) -> str:
    """The baseline subject of a network (as ``network`` names it)."""
    return f"data:net:{net}"


def signin_address(event: Event) -> str | None:
    """The public address of a successful sign-in of the tenant's own users or workloads."""
    if event.log_set not in _SIGNINS or event.result != "SUCCESS":
        return None
    if event.category == _FIRST_PARTY or event.source_ip_scope not in (None, "public"):
        return None
    return event.source_ip


def feed(state: EngineState, event: Event, ts: float, horizon: float) -> None:
    """Teach the data-plane and tenant-address baselines what a successful ``event`` shows."""
    if event.category in DATA_PLANE:
        seen = sighting(event)
        if seen is not None:
            _observe(state, seen.subject, seen.kind, seen.value, ts, horizon)
        return
    ip = signin_address(event)
    if ip:
        _observe(state, network_subject(network(ip)), SIGNIN, "", ts, horizon)
        _observe(state, TENANT, SIGNIN, "", ts, horizon)


def _observe(
    state: EngineState, subject: str, kind: str, value: str, ts: float, horizon: float
) -> None:
    baseline = state.baselines.get(subject)
    if baseline is None:
        baseline = state.baselines[subject] = UserBaseline()
    baseline.observe(kind, value, ts, horizon)
    state.dirty_baselines[subject] = None
