"""`flask --app wsgi ...` commands: db, clients, demo data and tokens, the worker."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from gateway import migrate

db_cli = AppGroup("db", help="Create or migrate the schema (Alembic).")
clients_cli = AppGroup("clients", help="Service clients (OAuth client credentials).")


@db_cli.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision):
    """Create or migrate the schema in GATEWAY_DATABASE_URL."""
    migrate.upgrade(current_app.config["DATABASE_URL"], revision)


@db_cli.command("downgrade")
@click.option("--revision", default="-1")
def db_downgrade(revision):
    """Step the schema back (default: one revision)."""
    migrate.downgrade(current_app.config["DATABASE_URL"], revision)


@clients_cli.command("create")
@click.argument("name")
@click.option("--scopes", required=True, help='e.g. "admin billing read"')
def clients_create(name, scopes):
    """Create a service client and print its credentials once."""
    from gateway.auth.signing import create_client

    db = current_app.extensions["gateway.db"].sessionmaker()
    try:
        click.echo(json.dumps(create_client(db, name, scopes)))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scopes") from exc
    finally:
        db.close()


@click.command("seed")
@click.option("--port", type=int, envvar="GATEWAY_PORT", default=None,
              help="The port the gateway is served on, for the printed URLs (default 8000).")
def seed(port):
    """Load the demo data (idempotent) and print ready tokens."""
    from gateway import demo

    click.echo(demo.seed_and_describe(current_app, port))


@click.command("dev-token")
@click.argument("subject")
@click.option("--ttl", default=3600)
def dev_token(subject, ttl):
    """A token from the development issuer for SUBJECT (a contact or an advisor)."""
    from gateway import demo

    click.echo(demo.dev_token(current_app, subject, ttl))


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst):
    """Run an RQ worker (with scheduler) on the gateway's queue, and the outbox relay."""
    from adapters import worker as worker_mod
    from gateway.orders.jobs import tick

    worker_mod.run(current_app._get_current_object(), burst=burst, tick=tick)


def register(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(clients_cli)
    app.cli.add_command(seed)
    app.cli.add_command(dev_token)
    app.cli.add_command(worker)
