"""Every error hubsight raises on purpose, as plain data the CLI and the API render.

    HubsightError                 message + hint (what to do about it)
    ├── ConfigError               bad configuration or user input (a usage error)
    │   ├── CredentialError       a connection string or key that cannot work
    │   ├── RequestTooLarge       a request body over the API's limit (413)
    │   ├── SecretRequired        a changed destination without its secret entered again (422)
    │   ├── SettingError          one named setting of a rule refused (``field`` names it)
    │   └── AlreadyExistsError    a name that is taken
    ├── SourceError               reading from a broker failed (``retriable`` says if waiting helps)
    ├── ParseError                one record could not be understood (carries its RecordRef)
    ├── StoreError                the event store refused or failed a read or a write
    │   └── StoreFullError        the disk holding the event store is full
    ├── NotFoundError             a named object (event source, ...) does not exist
    ├── RuleError                 a shipped detection rule or its examples cannot be used
    ├── AccessError               the caller may not do this
    │   ├── SignInRequired        no valid session or API token (401; ``expired`` says why)
    │   └── ForbiddenError        signed in, but the role or the CSRF token does not allow it (403)
    └── QueryError                a search cannot run
        └── QuerySyntaxError      with line, column and a caret excerpt

Third-party exceptions are translated at the adapter that meets them (``raise ... from exc``);
none of librdkafka's, ClickHouse's or HTTP's escape into the rest of the code. Messages never
contain secrets: adapters build them from names and hosts only.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecordRef:
    """Where one record came from: a Kafka position plus the record's index in its message."""

    topic: str
    partition: int
    offset: int
    index: int = 0

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}#{self.index}"


class HubsightError(Exception):
    """Base of hubsight's own errors; ``hint`` tells the user what to do."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(HubsightError):
    """Configuration or user input that cannot be accepted."""


class CredentialError(ConfigError):
    """A connection string, key or password that cannot work as given."""


class RequestTooLarge(ConfigError):
    """A request body larger than the API accepts."""


class SecretRequired(ConfigError):
    """An edit that changes where a stored secret is sent, without entering the secret again."""


class SettingError(ConfigError):
    """A value one setting cannot take; ``field`` names the setting, for a form to mark it."""

    def __init__(self, message: str, *, field: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.field = field


class AlreadyExistsError(ConfigError):
    """A name that is already taken."""


class SourceError(HubsightError):
    """Reading from a broker failed; ``retriable`` is true when waiting may fix it."""

    def __init__(self, message: str, *, hint: str = "", retriable: bool = True) -> None:
        super().__init__(message, hint=hint)
        self.retriable = retriable


class ParseError(HubsightError):
    """One record could not be understood."""

    def __init__(self, message: str, *, ref: RecordRef | None = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.ref = ref


class StoreError(HubsightError):
    """The event store failed a read or a write."""


class StoreFullError(StoreError):
    """The disk holding the event store is full: ``path`` has ``free_bytes`` left."""

    def __init__(self, message: str, *, path: str, free_bytes: int, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.free_bytes = free_bytes


class NotFoundError(HubsightError):
    """A named object does not exist."""


class RuleError(HubsightError):
    """A shipped detection rule, or one of its examples, that cannot be used."""


class AccessError(HubsightError):
    """The caller may not do this."""


class SignInRequired(AccessError):
    """No valid session or API token; ``expired`` names why a session ended ("idle", "max")."""

    def __init__(self, message: str, *, hint: str = "", expired: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.expired = expired


class ForbiddenError(AccessError):
    """Signed in, but the account's role or a missing CSRF token does not allow the request."""


class QueryError(HubsightError):
    """A search that cannot run."""


class QuerySyntaxError(QueryError):
    """A query that does not parse; ``excerpt`` shows the query with a caret under the problem."""

    def __init__(self, message: str, *, query: str, line: int, column: int, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.query = query
        self.line = line
        self.column = column

    @property
    def excerpt(self) -> str:
        """The offending line of the query and a caret under the column."""
        lines = self.query.splitlines() or [""]
        text = lines[min(self.line, len(lines)) - 1]
        return f"{text}\n{' ' * max(self.column - 1, 0)}^"


def is_usage_error(exc: HubsightError) -> bool:
    """Whether the caller's input is at fault: the CLI's exit code 2, the API's ``usage``."""
    return isinstance(exc, ConfigError | QuerySyntaxError)


# What to do about the errors the system gives for a path; others get the general hint.
_OS_HINTS = {
    errno.ENOENT: "check the path: the directory holding it must exist",
    errno.ENOTDIR: "a part of the path is a file, not a directory: check the path",
    errno.EISDIR: "the path is a directory where a file is needed: check the path",
    errno.EACCES: "run as the user owning it (the data directory is its owner's only), or fix "
    "its permissions",
    errno.EPERM: "run as the user owning it, or fix its permissions",
    errno.EROFS: "the file system is read-only: remount it read-write, or use another path",
    errno.ENOSPC: "the disk is full: free space on it (or lower retention), then run it again",
    errno.EDQUOT: "the disk quota is used up: free space, then run it again",
}


def path_error(exc: OSError) -> HubsightError:
    """The system's refusal of a path as hubsight's error: what, which path, what to do."""
    reason = exc.strerror or str(exc)
    where = f"{exc.filename}: " if exc.filename is not None else ""
    hint = _OS_HINTS.get(exc.errno or 0, "check the path and its permissions, then run it again")
    return HubsightError(f"{where}{reason}", hint=hint)
