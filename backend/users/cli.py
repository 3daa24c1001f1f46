"""`prunelab users ...` and `prunelab tokens ...`: accounts are made on the server, by whoever runs it."""

from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy.orm import Session

from prunelab.server.db import session_scope
from prunelab.server.users import service


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = commands.add_parser("users", help="add and list the people who sign in").add_subparsers(
        dest="action", required=True
    )
    add = users.add_parser("add", help="add a user (prompts for the password)")
    add.add_argument("name", help="lower-case letters, digits, '.', '_' or '-'")
    add.add_argument("--admin", action="store_true", help="may cancel, delete, tag and annotate every run")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users.add_parser("list", help="list users")
    passwd = users.add_parser("passwd", help="set a user's password (signs them out everywhere)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    tokens = commands.add_parser("tokens", help="API tokens for scripts").add_subparsers(dest="action", required=True)
    create = tokens.add_parser("create", help="make a token for a user and print it (shown once)")
    create.add_argument("name", help="the user the token acts as")
    create.add_argument("--label", default="", help="what the token is for, shown by `tokens list`")
    listing = tokens.add_parser("list", help="list tokens (never their values)")
    listing.add_argument("name", nargs="?", help="only this user's tokens")
    revoke = tokens.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("token_id", type=int, metavar="ID", help="the token's id (`tokens list`)")


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != password:
        raise service.UserError("the two passwords differ")
    return password


def run_command(args: argparse.Namespace) -> int:
    """Carry out a users or tokens command; 2 with a message when it cannot be done."""
    try:
        with session_scope() as session:
            if args.command == "users":
                return _users(session, args)
            return _tokens(session, args)
    except service.UserError as error:
        print(f"prunelab {args.command} {args.action}: {error}", file=sys.stderr)
        return 2


def _users(session: Session, args: argparse.Namespace) -> int:
    if args.action == "add":
        service.check_name(args.name)
        user = service.add_user(session, args.name, read_password(args.password_stdin), is_admin=args.admin)
        print(f"added {user.name}{' (admin)' if user.is_admin else ''}")
    elif args.action == "passwd":
        user = service.get_user(session, args.name)
        service.set_password(session, user, read_password(args.password_stdin))
        print(f"set the password of {user.name}; their sessions have ended")
    else:
        rows = service.list_users(session)
        if not rows:
            print("no users: PruneLab is open on loopback only (prunelab users add NAME adds one)")
        for user, tokens in rows:
            role = "admin" if user.is_admin else "user"
            print(f"{user.name}\t{role}\t{tokens} token{'s' if tokens != 1 else ''}\tsince {user.created_at:%Y-%m-%d}")
    return 0


def _tokens(session: Session, args: argparse.Namespace) -> int:
    if args.action == "create":
        token, value = service.create_token(session, service.get_user(session, args.name), args.label)
        print(value)
        print(f"token {token.id} for {args.name}: store it now, it is not shown again", file=sys.stderr)
    elif args.action == "revoke":
        token = service.revoke_token(session, args.token_id)
        print(f"revoked token {token.id} of {token.user.name}")
    else:
        user = service.get_user(session, args.name) if args.name else None
        for token in service.list_tokens(session, user):
            state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "live"
            print(f"{token.id}\t{token.user.name}\t{token.label or '-'}\t{state}\tcreated {token.created_at:%Y-%m-%d}")
    return 0
