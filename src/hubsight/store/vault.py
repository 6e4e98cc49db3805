"""Encryption of secrets at rest (Fernet) with a key from the environment or a 0600 key file."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from hubsight.errors import ConfigError

KEY_ENV = "HUBSIGHT_SECRET_KEY"
KEY_FILE = "secret.key"


class Vault:
    """Encrypts and decrypts secrets with one Fernet key."""

    def __init__(self, data_dir: Path) -> None:
        key = os.environ.get(KEY_ENV)
        if key:
            self._key_source = f"${KEY_ENV}"
            raw = key.encode()
        else:
            path = data_dir / KEY_FILE
            self._key_source = str(path)
            raw = _read_or_create(path)
        # Seals are keyed with a key derived from the Fernet key, never with that key itself.
        self._seal_key = hmac.new(raw, b"hubsight seal", hashlib.sha256).digest()
        try:
            self._fernet = Fernet(raw)
        except ValueError as exc:
            raise ConfigError(
                f"the secret key in {self._key_source} is not a Fernet key",
                hint="it must be 32 url-safe base64-encoded bytes; remove it to let hubsight make "
                "a new one (stored secrets must then be entered again)",
            ) from exc

    def encrypt(self, secret: str) -> str:
        """The secret as a Fernet token."""
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def seal(self, text: str) -> str:
        """An HMAC-SHA256 of ``text``: only a holder of the key can make one that matches."""
        return hmac.new(self._seal_key, text.encode(), hashlib.sha256).hexdigest()

    def decrypt(self, token: str) -> str:
        """The secret behind a token made with the same key."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise ConfigError(
                f"a stored secret cannot be decrypted with the key in {self._key_source}",
                hint=f"restore the key the secrets were stored with (${KEY_ENV} or "
                f"<data dir>/{KEY_FILE}), or add the event source again",
            ) from exc


def _read_or_create(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
