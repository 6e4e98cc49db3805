"""Key Vault ``AuditEvent``: every request to a vault (secret reads, key operations, vault changes).

Microsoft's Key Vault logging schema: ``operationName`` (``SecretGet``, ``KeyDecrypt``,
``VaultPut``, ...), ``resultSignature`` (the HTTP status text), ``identity.claim`` (the caller's
UPN, object id and app id, under short names or full claim URIs), and ``properties.id``, the
URL of the secret, key or certificate acted on, with ``properties.httpStatusCode``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from hubsight.parsing.azure.deps import ParserDeps
from hubsight.parsing.azure.normalize import as_int, blanks_to_none, nonempty
from hubsight.parsing.azure.resourcelog import read_resource_log
from hubsight.parsing.base import RecordContext
from hubsight.parsing.event import Event, LogSet

KEY_VAULT_CATEGORY = "AuditEvent"
_SERVICE = "Azure Key Vault"
_VAULT_TYPE = "Microsoft.KeyVault/vaults"
_OBJECT_KINDS = {"secrets": "secret", "keys": "key", "certificates": "certificate"}
# resultSignature as Key Vault writes it, for records without properties.httpStatusCode.
_SIGNATURES = {
    "ok": 200,
    "created": 201,
    "accepted": 202,
    "nocontent": 204,
    "badrequest": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "notfound": 404,
    "conflict": 409,
    "toomanyrequests": 429,
}


class KeyVaultParser:
    """Normalizes Key Vault ``AuditEvent`` records into Cloud Service Activity."""

    categories = (KEY_VAULT_CATEGORY,)

    def __init__(self, deps: ParserDeps) -> None:
        self._geoip = deps.geoip

    def parse(self, record: bytes, ctx: RecordContext) -> Event:
        """Normalize one Key Vault audit record."""
        event, head, props = read_resource_log(
            record, ctx, LogSet.CLOUD_SERVICE_ACTIVITY, self._geoip
        )
        event.service = _SERVICE
        status = as_int(props.get("httpStatusCode"))
        signature = head.resultSignature
        if status is None:
            status = as_int(signature)
        if status is None and isinstance(signature, str):
            status = _SIGNATURES.get(signature.replace(" ", "").lower())
        event.http_status = status
        if status is not None:
            event.result = "SUCCESS" if status < 400 else "FAILED"
        if event.result == "FAILED":
            event.failure_reason = head.resultDescription or nonempty(signature)
        event.url = nonempty(props.get("requestUri"))
        event.user_agent = nonempty(props.get("clientInfo"))
        vault, kind, name = object_of(nonempty(props.get("id")))
        event.target_resource = vault or event.target_resource
        # Resource ids arrive upper-cased; the type reads as Azure documents it.
        event.target_type = f"Microsoft.KeyVault/vaults/{kind}s" if kind else _VAULT_TYPE
        event.object_name = name
        return blanks_to_none(event)


def object_of(url: str | None) -> tuple[str | None, str | None, str | None]:
    """Vault name, object kind (secret/key/certificate) and object name from a Key Vault URL."""
    if not url:
        return None, None, None
    parts = urlsplit(url)
    vault = (parts.hostname or "").split(".", 1)[0] or None
    path = [part for part in parts.path.split("/") if part]
    if len(path) >= 2 and path[0].lower() in _OBJECT_KINDS:
        return vault, _OBJECT_KINDS[path[0].lower()], path[1]
    return vault, None, None
