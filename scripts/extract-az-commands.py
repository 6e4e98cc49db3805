"""Extract the command/flag table of the az commands `hubsight azure setup` prints.

Run with a pinned azure-cli installed (it is ~1 GB, so the tests do not install it):

    python3 -m venv /tmp/azcli && /tmp/azcli/bin/pip install azure-cli==2.91.0
    /tmp/azcli/bin/python scripts/extract-az-commands.py > tests/data/az/commands.json

It loads azure-cli's own command table (the one `az` parses arguments with) and writes, for each
command below, every option string it accepts, which arguments are required and the values an
option is limited to. The extract holds facts about azure-cli's interface (azure-cli is
MIT-licensed); tests/provision checks the printed script against it.
"""

from __future__ import annotations

import argparse
import json
import sys

from azure.cli.core import __version__, get_default_cli

COMMANDS = (
    "account set",
    "provider register",
    "group create",
    "eventhubs namespace create",
    "eventhubs eventhub create",
    "eventhubs namespace authorization-rule create",
    "eventhubs namespace authorization-rule keys list",
    "eventhubs eventhub authorization-rule create",
    "eventhubs eventhub authorization-rule keys list",
    "monitor diagnostic-settings subscription create",
    "rest",
    "security automation create_or_update",
    "deployment group create",
)


def _parser_of(name: str) -> argparse.ArgumentParser:
    """The argument parser az builds for one command, built the way ``az NAME ...`` builds it."""
    cli = get_default_cli()
    invoker = cli.invocation_cls(
        cli_ctx=cli,
        parser_cls=cli.parser_cls,
        commands_loader_cls=cli.commands_loader_cls,
        help_cls=cli.help_cls,
    )
    cli.invocation = invoker
    loader = invoker.commands_loader
    table = loader.load_command_table(name.split())
    if name not in table:
        sys.exit(f"az {name}: not in azure-cli {__version__}'s command table")
    # Argument overrides (``--name -n`` ...) apply only to the command being invoked.
    invoker.data["command_string"] = name
    loader.command_name = name
    loader.load_arguments(name)
    invoker.parser.cli_ctx = cli
    invoker.parser.load_command_table(loader)
    parser: argparse.ArgumentParser = invoker.parser.subparser_map[name]
    return parser


def main() -> None:
    """Print the extract as JSON."""
    out: dict[str, object] = {}
    for name in COMMANDS:
        options: set[str] = set()
        required: list[list[str]] = []
        choices: dict[str, list[str]] = {}
        for action in _parser_of(name)._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            options.update(action.option_strings)
            if action.required:
                required.append(sorted(action.option_strings))
            if action.choices:
                choices[max(action.option_strings, key=len)] = sorted(map(str, action.choices))
        out[name] = {"options": sorted(options), "required": sorted(required), "choices": choices}
    json.dump(
        {"azure_cli": __version__, "commands": out},
        sys.stdout,
        indent=1,
        sort_keys=True,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
