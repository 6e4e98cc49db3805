"""``hubsight users``: console accounts and API tokens (works while ``hubsight run`` serves)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from hubsight.cli.prompting import ask_secret
from hubsight.cli.trail import record_cli
from hubsight.errors import ConfigError
from hubsight.store.tokens import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, token_id
from hubsight.store.users import ROLES, Role, UserStore


def _password(env_var: str | None) -> str:
    if env_var is not None:
        value = os.environ.get(env_var)
        if not value:
            raise ConfigError(
                f"the environment variable {env_var} is empty or not set",
                hint=f"export {env_var}=... first, or leave out --password-env to be prompted",
            )
        return value
    return ask_secret("password", hint="give --password-env VAR, or pipe it on standard input",
                      confirm=True)  # fmt: skip


_NAME = click.option("--name", required=True, help="User name to sign in with.")
_PASSWORD_ENV = click.option(
    "--password-env",
    metavar="VAR",
    default=None,
    help="Read the password from this environment variable instead of prompting.",
)


@click.group("users")
def users() -> None:
    """Console accounts: create admins and analysts, list them; issue, list, revoke API tokens."""


@users.command("create-admin")
@_NAME
@_PASSWORD_ENV
@click.pass_obj
def create_admin(data_dir: Path, name: str, password_env: str | None) -> None:
    """Create an admin account (may change sources, rules and users)."""
    account = UserStore(data_dir).create(name, _password(password_env), "admin")
    record_cli(data_dir, "account.create", name, changes={"role": [None, "admin"]})
    # This command does not know where `hubsight run` listens: say which address is the default.
    click.echo(
        f"created admin '{account.name}'; sign in at the console's /login "
        "(http://127.0.0.1:8080/login unless `hubsight run` was given another --host or --port)"
    )


@users.command("create")
@_NAME
@click.option("--role", type=click.Choice(ROLES), default="analyst", show_default=True)
@_PASSWORD_ENV
@click.pass_obj
def create(data_dir: Path, name: str, role: Role, password_env: str | None) -> None:
    """Create an account; analysts search and triage only."""
    account = UserStore(data_dir).create(name, _password(password_env), role)
    record_cli(data_dir, "account.create", name, changes={"role": [None, role]})
    click.echo(f"created {account.role} '{account.name}'")


@users.command("list")
@click.pass_obj
def list_users(data_dir: Path) -> None:
    """Every account with its role."""
    for account in UserStore(data_dir).accounts():
        click.echo(f"{account.name}\t{account.role}")


@users.command("delete")
@_NAME
@click.pass_obj
def delete(data_dir: Path, name: str) -> None:
    """Delete an account, its sessions and its API tokens."""
    users = UserStore(data_dir)
    roles = {a.name: a.role for a in users.accounts()}
    users.delete(name)
    record_cli(data_dir, "account.delete", name, changes={"role": [roles.get(name), None]})
    click.echo(f"deleted '{name}'")


@users.command("token")
@_NAME
@click.option("--label", required=True, help="What the token is for, e.g. soar-script.")
@click.option(
    "--days",
    type=click.IntRange(1, MAX_TOKEN_DAYS),
    default=DEFAULT_TOKEN_DAYS,
    show_default=True,
    help="Days until the token expires.",
)
@click.pass_obj
def token(data_dir: Path, name: str, label: str, days: int) -> None:
    """Issue an API token for an account; it is printed once (send it as a Bearer token)."""
    store = UserStore(data_dir)
    secret = store.issue_token(name, label, days=days)
    # Only the secret goes to stdout, which scripts capture; the rest is for the person.
    issued = store.token(token_id(secret)).as_dict(store.now())
    record_cli(
        data_dir, "token.create", name, label=label, id=issued["id"], expires=issued["expires_at"]
    )
    click.echo(secret)
    click.echo(f"id {issued['id']}, expires {issued['expires_at']}", err=True)


@users.command("tokens")
@click.option("--name", default=None, help="Only this account's tokens.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@click.pass_obj
def tokens(data_dir: Path, name: str | None, as_json: bool) -> None:
    """API tokens (never their secrets): id, account, label, created, expires, last use, status.

    An expired or revoked token is listed 30 days more (--json: deleted_after), then deleted.
    """
    store = UserStore(data_dir)
    listed = [t.as_dict(store.now()) for t in store.tokens(name)]
    if as_json:
        click.echo(json.dumps(listed, indent=2))
        return
    for t in listed:
        fields = ("id", "name", "label", "created_at", "expires_at", "last_used", "status")
        click.echo("\t".join(t[f] or "-" for f in fields))


@users.command("revoke-token")
@click.option("--id", "token_id_", required=True, help="The token's id, from `users tokens`.")
@click.pass_obj
def revoke_token(data_dir: Path, token_id_: str) -> None:
    """Revoke an API token at once; it stays listed as revoked."""
    revoked = UserStore(data_dir).revoke_token(token_id_)
    record_cli(data_dir, "token.revoke", revoked.name, label=revoked.label, id=revoked.id)
    click.echo(f"revoked {revoked.id} ('{revoked.label}' of {revoked.name})")
