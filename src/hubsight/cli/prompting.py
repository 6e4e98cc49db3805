"""Secrets asked for on the command line: a no-echo prompt on a terminal, else one line of stdin.

Without a terminal (a script, cron, ``</dev/null``) click's prompt warned that the input may be
echoed and ended in a bare ``Aborted!`` when nothing came; a secret piped in still works.
"""

from __future__ import annotations

import sys

import click

from hubsight.errors import ConfigError


def ask_secret(what: str, hint: str, *, confirm: bool = False) -> str:
    """``what`` from a no-echo prompt (asked twice with ``confirm``), or the first line of a
    stdin that is not a terminal; a ``ConfigError`` with ``hint`` when that is empty."""
    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        answer: str = click.prompt(
            what[:1].upper() + what[1:],
            hide_input=True,
            err=True,
            confirmation_prompt=f"Repeat the {what}" if confirm else False,
        )
        return answer
    line = (stdin.readline() if stdin is not None else "").rstrip("\r\n")
    if not line.strip():
        raise ConfigError(
            f"no {what} given, and no terminal to ask for it on (standard input is empty)",
            hint=hint,
        )
    return line
