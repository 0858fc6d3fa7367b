"""``qibot staff add|passwd|disable|enable|list``: the console's accounts.

Passwords are read with ``getpass`` (asked twice) or, with ``--password-stdin``, from the first
line of standard input (for scripts); never from the command line, where other users and the
shell history would see them, and never logged.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli_cases import _fmt, _in_transaction, _zone
from bot.config import Settings
from bot.console import sessions
from bot.services import staff_accounts
from bot.services.staff_accounts import AccountError
from bot.storage.models import Commissioner
from bot.storage.types import utcnow


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def cmd_staff(args: argparse.Namespace, settings: Settings) -> int:
    action = args.staff_command
    try:
        password = read_password(args.password_stdin) if action in ("add", "passwd") else ""
        return _run(args, settings, password)
    except AccountError as exc:
        print(f"qibot: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, settings: Settings, password: str) -> int:
    import asyncio

    action = args.staff_command
    now = utcnow()

    async def work(session: AsyncSession) -> int:
        if action == "add":
            account = await staff_accounts.add(
                session, login=args.login, display_name=args.display_name, role=args.role, password=password,
                commissioner=args.commissioner, now=now)
            print(f"created {account.login} ({account.role}); sign in at /console/login")
        elif action == "passwd":
            account = await staff_accounts.set_password(session, args.login, password, now)
            await sessions.end_all(session, account.id)
            print(f"password of {account.login} changed; its sessions are signed out")
        elif action in ("disable", "enable"):
            account = await staff_accounts.set_disabled(session, args.login, action == "disable")
            if account.disabled:
                await sessions.end_all(session, account.id)
            print(f"{account.login} {'disabled' if account.disabled else 'enabled'}")
        else:
            zone = _zone(settings)
            for account in await staff_accounts.listing(session):
                person = await session.get(Commissioner, account.commissioner_id) if account.commissioner_id else None
                state = "disabled" if account.disabled else "active"
                print(f"{account.login:<16} {account.role:<12} {state:<8} {person.handle if person else '-':<10} "
                      f"{account.display_name}  last sign-in {_fmt(account.last_login_at, zone)}")
        return 0

    return asyncio.run(_in_transaction(settings, work))
