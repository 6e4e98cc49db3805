"""``hubsight users``: console accounts and API tokens (works while ``hubsight run`` serves)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from hubsight.cli.trail import record_cli
from hubsight.errors import ConfigError
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
    prompted: str = click.prompt(
        "Password", hide_input=True, confirmation_prompt="Repeat the password"
    )
    return prompted


_NAME = click.option("--name", required=True, help="User name to sign in with.")
_PASSWORD_ENV = click.option(
    "--password-env",
    metavar="VAR",
    default=None,
    help="Read the password from this environment variable instead of prompting.",
)


@click.group("users")
def users() -> None:
    """Console accounts: create admins and analysts, list them, issue API tokens."""


@users.command("create-admin")
@_NAME
@_PASSWORD_ENV
@click.pass_obj
def create_admin(data_dir: Path, name: str, password_env: str | None) -> None:
    """Create an admin account (may change sources, rules and users)."""
    account = UserStore(data_dir).create(name, _password(password_env), "admin")
    record_cli(data_dir, "account.create", name, changes={"role": [None, "admin"]})
    click.echo(f"created admin '{account.name}'; sign in at http://127.0.0.1:8080/login")


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
@click.pass_obj
def token(data_dir: Path, name: str, label: str) -> None:
    """Issue an API token for an account; it is printed once (send it as a Bearer token)."""
    issued = UserStore(data_dir).issue_token(name, label)
    record_cli(data_dir, "token.create", name, label=label)
    click.echo(issued)
