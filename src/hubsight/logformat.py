"""How ``hubsight run`` logs: readable lines, or one JSON object per line for log shippers.

``--log-format json`` (or ``HUBSIGHT_LOG_FORMAT=json``) writes objects with ``time`` (UTC, ISO
8601), ``level``, ``logger``, ``message``, ``thread`` and, for an exception, ``exception``
(its traceback as text), so journald, Vector or Fluent Bit can parse them without a pattern.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import IO, Literal

from hubsight.errors import ConfigError

LOG_FORMAT_ENV = "HUBSIGHT_LOG_FORMAT"
# librdkafka's own lines (see ``sources.kafka.QuietRepeats``).
KAFKA_CLIENT_LOGGER = "hubsight.kafka.client"
# Loggers whose lines say again, in a library's words, a failure hubsight reports in its own:
# clickhouse-connect's "Unexpected Http Driver Exception", urllib3's retries, librdkafka's.
LIBRARY_LOGGERS = ("clickhouse_connect", "urllib3", KAFKA_CLIENT_LOGGER)
LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON."""
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def resolve_log_format(flag: str | None) -> LogFormat:
    """``--log-format`` over ``HUBSIGHT_LOG_FORMAT`` over text."""
    value = flag or os.environ.get(LOG_FORMAT_ENV) or "text"
    for known in FORMATS:
        if value == known:
            return known
    raise ConfigError(f"{LOG_FORMAT_ENV}={value!r} is not a log format", hint="use text or json")


def configure_logging(log_format: LogFormat, stream: IO[str] | None = None) -> None:
    """Send INFO and above to ``stream`` (stderr) in ``log_format``, replacing other handlers."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def quiet_library_logs() -> None:
    """Keep the library loggers' lines off a command's stderr.

    A record with no handler on its way to the root is printed bare by Python's last-resort
    handler: the command's own ``error:`` line said it already. A null handler on each library
    logger stops that; records still reach the root, so ``run``'s log (``configure_logging``)
    keeps them.
    """
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
