"""`dfr user …`: account administration from the shell of the machine that runs dfr.

Whoever can run this can read the database anyway, so it needs no sign-in; every change is still an
audit record (actor ``cli``). Passwords are read without echo, or from stdin for scripts, never from
the command line (where `ps` and shell history would keep them).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from dfr.auth.principal import Role
from dfr.auth.users import AccountError, UserStore
from dfr.store import Store

DEMO_ACCOUNTS = {  # demo mode only (`dfr demo`): printed at start-up, reset at every start
    "pilot": ("dfr-demo-pilot", Role.PILOT),
    "viewer": ("dfr-demo-viewer", Role.VIEWER),
    "admin": ("dfr-demo-admin", Role.ADMIN),
}


DEMO_FEED_SOURCES = ("replay:dc-mpd-shotspotter-2018q3", "sim-cad")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="SQLAlchemy URL (default: DFR_DATABASE_URL or ./var/dfr.sqlite)")
    sub = p.add_subparsers(dest="user_command", required=True)
    add = sub.add_parser("add", help="create an account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="SOURCE",
        help="feed accounts: an incident source it may report as (repeat for several); that source is then "
        "this account's alone",
    )
    src = sub.add_parser("sources", help="set the sources a feed account may report as (none: unbound)")
    src.add_argument("username")
    src.add_argument("--source", action="append", default=[], metavar="SOURCE")
    pw = sub.add_parser("passwd", help="set an account's password (ends its sessions)")
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true")
    for name in ("disable", "enable"):
        sub.add_parser(name, help=f"{name} an account").add_argument("username")
    sub.add_parser("list", help="list accounts (and feed accounts' sources)")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


async def run(args: argparse.Namespace, database_url: str) -> int:
    password = None
    if args.user_command in ("add", "passwd"):
        password = _read_password(args.password_stdin)
    store = await Store.open(database_url)
    try:
        users = UserStore(store)
        if args.user_command == "add":
            assert password is not None
            await users.add(args.username, password, Role(args.role), actor="cli", sources=args.source)
            bound = f", reports as {', '.join(sorted(set(args.source)))}" if args.source else ""
            print(f"added {args.username} ({args.role}{bound})")
            if Role(args.role) is Role.FEED and not args.source:
                print(
                    "note: a feed account without --source may report as any source nobody owns; bind it "
                    f"with: dfr user sources {args.username} --source NAME",
                    file=sys.stderr,
                )
        elif args.user_command == "sources":
            await users.set_sources(args.username, args.source, actor="cli")
            print(
                f"{args.username} reports as: {', '.join(sorted(set(args.source))) or 'any unowned source'}"
            )
        elif args.user_command == "passwd":
            assert password is not None
            await users.set_password(args.username, password, actor="cli")
            print(f"password of {args.username} set; its sessions ended")
        elif args.user_command in ("disable", "enable"):
            await users.set_disabled(args.username, args.user_command == "disable", actor="cli")
            print(f"{args.username} {args.user_command}d")
        else:
            for u in await users.list():
                state = " (disabled)" if u["disabled"] else ""
                sources = u["sources"]
                bound = f" sources: {', '.join(sources)}" if isinstance(sources, list) and sources else ""
                print(f"{u['username']:<24} {u['role']:<8}{state}{bound}")
    finally:
        await store.close()
    return 0


def main(args: argparse.Namespace, database_url: str) -> int:
    try:
        return asyncio.run(run(args, database_url))
    except AccountError as e:
        print(f"dfr user: {e}", file=sys.stderr)
        return 2


async def ensure_demo_accounts(store: Store) -> str:
    """Create (or reset) the demo logins and a feed account; returns a bearer token for the demo feed."""
    import secrets

    users = UserStore(store)
    for name, (password, role) in DEMO_ACCOUNTS.items():
        if await users.get(name) is None:
            await users.add(name, password, role, actor="demo")
        else:
            await users.set_password(name, password, actor="demo")
    feed_password = secrets.token_urlsafe(18)
    if await users.get("demo-feed") is None:
        await users.add("demo-feed", feed_password, Role.FEED, actor="demo")
    else:
        await users.set_password("demo-feed", feed_password, actor="demo")
    await users.set_sources("demo-feed", DEMO_FEED_SOURCES, actor="demo")  # what sim/feed.py reports as
    token, _, _ = await users.sign_in("demo-feed", feed_password, source="demo")
    return token
