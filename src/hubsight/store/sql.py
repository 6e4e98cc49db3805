"""What every ClickHouse-backed store shares: its reads' answer format and the offset guard."""

from __future__ import annotations

from typing import Any

import msgspec

# Settings of every read. 64-bit integers as JSON numbers, not strings. No implicit projections:
# ClickHouse 26.9 counted the granules that the primary key shows wholly inside a time range
# from the index and read the same parts again from the ``by_user`` projection, so a count over
# a time range (``calculate(count)``) gave each of those events twice (16,667 for 11,999).
READ_SETTINGS: dict[str, int] = {
    "output_format_json_quote_64bit_integers": 0,
    "optimize_use_implicit_projections": 0,
}

# The collector's guard: the highest stored offset per (topic, partition) of one log name.
# The offset of the last message stored per partition: the last one received, not the highest,
# so that after a topic is re-created (offsets from 0 again) the guard follows the new offsets.
STORED_OFFSETS = (
    "SELECT source_topic, source_partition, argMax(source_offset, "
    "(ifNull(received_time, toDateTime64(0, 3, 'UTC')), source_offset)) AS offset "
    "FROM events WHERE log_name = {log_name:String} "
    "AND source_offset IS NOT NULL GROUP BY source_topic, source_partition"
)

# When the broker took the message last stored at one position (its enqueue time, in ms): the
# same message read again has the same time; another message there means another log. The last
# received: a re-created topic's positions repeat the old log's.
STORED_ENQUEUED_MS = (
    "SELECT toUnixTimestamp64Milli(enqueued_time) AS ms FROM events "
    "WHERE log_name = {log_name:String} AND source_topic = {topic:String} "
    "AND source_partition = {partition:Int64} AND source_offset = {offset:Int64} "
    "AND enqueued_time IS NOT NULL ORDER BY received_time DESC LIMIT 1"
)


class _Result(msgspec.Struct):
    meta: list[dict[str, str]]
    data: list[list[Any]]


_decoder = msgspec.json.Decoder(_Result)


def decode_rows(body: bytes) -> list[dict[str, Any]]:
    """Rows of a ``JSONCompact`` answer as dicts keyed by column name."""
    result = _decoder.decode(body)
    names = [column["name"] for column in result.meta]
    return [dict(zip(names, row, strict=True)) for row in result.data]
