"""CSV rows that a spreadsheet opens as data, never as formulas (OWASP's CSV injection advice).

Azure logs what people type (a user name on a failed sign-in, say ``=HYPERLINK(...)``), so a
cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
``'``: spreadsheets show it as text. Numbers, also as text (``-1.5``), stay numbers. Every CSV
hubsight writes goes through ``csv_row``.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import msgspec

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_encoder = msgspec.json.Encoder()


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell: JSON for objects and lists, formulas defused."""
    if isinstance(value, dict | list):
        value = _encoder.encode(value).decode()
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(values: list[Any], lineterminator: str = "\r\n") -> str:
    """One CSV line of ``values``, each through ``csv_cell``."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=lineterminator).writerow([csv_cell(v) for v in values])
    return buffer.getvalue()
