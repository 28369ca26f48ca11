"""`facility users`: add, list, disable staff accounts and set their passwords."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from accounts.passwords import WeakPassword
from accounts.roles import Role
from accounts.users import BadUser, UserBook, UserExists, UserMissing
from ground.settings import Settings
from records.db import Database, database_url, migrate

PASSWORD_VARIABLE = "FACILITY_NEW_PASSWORD"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `users` subcommand and its own subcommands."""
    users = sub.add_parser("users", help="staff accounts of the console and the API")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser(
        "add", help=f"add an account; the password comes from {PASSWORD_VARIABLE} or a prompt"
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument(
        "--site", action="append", default=[], metavar="SITE", help="limit to this site (repeat for more)"
    )
    users_sub.add_parser("list", help="every account: name, role, sites, state")
    disable = users_sub.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("name")
    passwd = users_sub.add_parser(
        "passwd", help=f"set an account's password from {PASSWORD_VARIABLE} or a prompt"
    )
    passwd.add_argument("name")


def _new_password() -> str:
    """The new password: from the environment, else asked twice without echo."""
    given = os.environ.get(PASSWORD_VARIABLE)
    if given:
        return given
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise WeakPassword("the two passwords differ")
    return first


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out one `facility users` command; 1 with a message on stderr when it cannot be done."""
    db = Database(database_url(settings.database_url, settings.data_dir))
    try:
        migrate(db.engine)
        book = UserBook(db)
        if args.users_command == "list":
            for user in book.list():
                sites = ",".join(user.sites) or "*"
                state = f"disabled {user.disabled_at:%Y-%m-%d %H:%M}Z" if user.disabled_at else "active"
                print(f"{user.username}\t{user.role}\t{sites}\t{state}")
        elif args.users_command == "add":
            user = book.add(args.name, _new_password(), Role(args.role), args.site)
            print(f"added {user.username} ({user.role}; sites: {','.join(user.sites) or 'all'})")
        elif args.users_command == "disable":
            print(f"disabled {book.disable(args.name).username}; its sessions are ended")
        elif args.users_command == "passwd":
            print(f"password of {book.set_password(args.name, _new_password()).username} set")
    except (UserExists, UserMissing, BadUser, WeakPassword) as exc:
        print(f"facility users: {exc}", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print("facility users: no password given", file=sys.stderr)
        return 1
    finally:
        db.engine.dispose()
    return 0
