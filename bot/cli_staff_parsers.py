"""The argument parsers of the staff commands (``qibot case``, ``complaint``, ``commissioner``,
``demo``, ``jobs``). Kept apart from their implementations in :mod:`bot.cli_cases` so that
``qibot nlu`` and ``qibot ask`` start without importing the database stack."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot.services.case_states import COMPLAINT_STATUS_ZH, STATUS_ZH
from intents.labels import DOMAIN_NAMES_ZH

STAFF_COMMANDS = ("case", "complaint", "commissioner", "demo", "jobs", "enterprise", "limits", "staff", "report")


class _WordsParser(argparse.ArgumentParser):
    """A case subcommand whose free text may have options between its words or after them
    (``resolve QI-… --as wang 已完成 检定``): the positional words are gathered intermixed."""

    _inner = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inner:  # parse_known_intermixed_args calls back in here
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def _by_name(names: dict[str, str], what: str) -> Any:
    """An argparse type taking a code (``metrology``) or its Chinese name (``计量``) → the code."""
    codes = {**{code: code for code in names}, **{zh: code for code, zh in names.items()}}

    def convert(text: str) -> str:
        code = codes.get(text.strip()) or codes.get(text.strip().lower())
        if code is None:
            raise argparse.ArgumentTypeError(f"没有“{text}”，可选：{'、'.join(names.values())}")
        return code

    convert.__name__ = what  # argparse names the argument's type in its error message
    return convert


def _text_argument(parser: Any, name: str, helptext: str) -> None:
    """The free text of ``resolve`` (summary) and ``reopen`` (reason), given the same two ways:
    positional (``resolve QI-… 已完成检定``) or as an option (``--summary …``, ``--reason …``)."""
    parser.add_argument(name, nargs="*", help=helptext)
    parser.add_argument(f"--{name}", dest=f"{name}_option", metavar=name.upper(),
                        help=f"{helptext} (same as positional)")


def text_of(args: argparse.Namespace, name: str) -> str:
    """The positional words or the option of :func:`_text_argument`; exactly one is required."""
    words, option = getattr(args, name, None) or [], getattr(args, f"{name}_option", None)
    if words and option:
        raise SystemExit(f"qibot: give the {name} once, either positional or --{name}, not both")
    text = " ".join(words) if words else (option or "")
    if not text.strip():
        raise SystemExit(f"qibot: the {name} is required (qibot case {args.case_command} NUMBER {name.upper()}…)")
    return text


def add_parsers(sub: Any) -> None:
    case = sub.add_parser(
        "case", help="cases: list (ledger), mine, show, accept, reply, note, transfer, resolve, reopen, end-live, ...")
    case_sub = case.add_subparsers(dest="case_command", required=True, parser_class=_WordsParser)
    listing = case_sub.add_parser("list", help="the work ledger, filterable")
    listing.add_argument("--status", type=_by_name(STATUS_ZH, "status"),
                         help="、".join(f"{zh}（{code}）" for code, zh in STATUS_ZH.items()))
    listing.add_argument("--domain", type=_by_name(DOMAIN_NAMES_ZH, "domain"),
                         help="、".join(f"{zh}（{code}）" for code, zh in DOMAIN_NAMES_ZH.items()))
    listing.add_argument("--district")
    listing.add_argument("--commissioner", help="handle of the owner (or assignee)")
    listing.add_argument("--since", help="YYYY-MM-DD")
    listing.add_argument("--until", help="YYYY-MM-DD (exclusive)")
    for name, helptext in (("show", "one case with its timeline"), ("accept", "take the case (首问负责制)"),
                           ("end-live", "end the live handoff"), ("export", "write the archive file (masked)"),
                           ("delete-archive", "delete an archive past its retention period")):
        p = case_sub.add_parser(name, help=helptext)
        p.add_argument("number")
        p.add_argument("--as", dest="actor", help="act as this commissioner (default: the case owner)")
        if name == "show":
            p.add_argument("--full", action="store_true", help="show contact details unmasked")
        if name == "export":
            p.add_argument("--out", help="the file to write (default: <data dir>/exports/NUMBER.json)")
    reply = case_sub.add_parser("reply", help="message the enterprise in its own channel")
    reply.add_argument("number")
    reply.add_argument("text", nargs="+")
    reply.add_argument("--as", dest="actor")
    note = case_sub.add_parser("note", help="a private note on the timeline (the enterprise is not told)")
    note.add_argument("number")
    note.add_argument("text", nargs="+")
    note.add_argument("--as", dest="actor")
    mine = case_sub.add_parser("mine", help="a commissioner's open cases (owned, or assigned and not yet accepted)")
    mine.add_argument("--as", dest="actor", required=True, help="the commissioner")
    transfer = case_sub.add_parser("transfer", help="hand the case to another commissioner, with a reason")
    transfer.add_argument("number")
    transfer.add_argument("--to", required=True)
    transfer.add_argument("--reason", required=True)
    transfer.add_argument("--as", dest="actor")
    resolve = case_sub.add_parser("resolve", help="mark done; the enterprise is asked for a rating")
    resolve.add_argument("number")
    _text_argument(resolve, "summary", "what was done")
    resolve.add_argument("--as", dest="actor")
    resolve.add_argument("--institution", type=int, help="id of the institution that served")
    resolve.add_argument("--expert", type=int, help="id of the expert that served")
    reopen = case_sub.add_parser("reopen", help="reopen a resolved or closed case")
    reopen.add_argument("number")
    _text_argument(reopen, "reason", "why the case is reopened")
    reopen.add_argument("--as", dest="actor")
    case.set_defaults(handler="cmd_case")

    complaint = sub.add_parser("complaint", help="complaints: list, reply")
    complaint_sub = complaint.add_subparsers(dest="complaint_command", required=True)
    clist = complaint_sub.add_parser("list")
    clist.add_argument("--status", type=_by_name(COMPLAINT_STATUS_ZH, "status"),
                       help="、".join(f"{zh}（{code}）" for code, zh in COMPLAINT_STATUS_ZH.items()))
    creply = complaint_sub.add_parser("reply")
    creply.add_argument("number")
    creply.add_argument("text", nargs="+")
    creply.add_argument("--as", dest="actor", default="management")
    complaint.set_defaults(handler="cmd_complaint")

    people = sub.add_parser("commissioner", help="commissioners: list, duty on|off, link-code, set-wecom, unlink")
    people_sub = people.add_subparsers(dest="commissioner_command", required=True)
    people_sub.add_parser("list")
    duty = people_sub.add_parser("duty")
    duty.add_argument("handle")
    duty.add_argument("state", choices=["on", "off"])
    link_code = people_sub.add_parser("link-code", help="one-time code to link Telegram or WeCom (15 minutes)")
    link_code.add_argument("handle")
    set_wecom = people_sub.add_parser("set-wecom", help="set the commissioner's WeCom UserID")
    set_wecom.add_argument("handle")
    set_wecom.add_argument("user_id")
    unlink = people_sub.add_parser("unlink", help="stop messenger notifications to the commissioner")
    unlink.add_argument("handle")
    unlink.add_argument("messenger", choices=["telegram", "wecom", "all"])
    people.set_defaults(handler="cmd_commissioner")

    demo_parser = sub.add_parser("demo", help="demo data")
    demo_sub = demo_parser.add_subparsers(dest="demo_command", required=True)
    demo_sub.add_parser("load", help="load sample sites, commissioners, institutions and experts")
    demo_parser.set_defaults(handler="cmd_demo")

    jobs = sub.add_parser("jobs", help="run the periodic jobs and the outbox dispatcher once (cron-friendly)")
    jobs.set_defaults(handler="cmd_jobs")

    # Implemented in bot/cli_privacy.py (the handler names the module).
    enterprise = sub.add_parser(
        "enterprise", help="a person's data: export (a copy) or erase (keeping what the archive rule requires, masked)")
    enterprise_sub = enterprise.add_subparsers(dest="enterprise_command", required=True)
    for name, helptext in (("export", "write everything kept about the enterprise, in clear, as JSON"),
                           ("erase", "erase the personal data; cases under archive retention stay, masked")):
        p = enterprise_sub.add_parser(name, help=helptext)
        p.add_argument("--mobile", help="the person's mobile (every profile with it)")
        p.add_argument("--credit-code", dest="credit_code")
        p.add_argument("--id", dest="enterprise_id", type=int, help="enterprise id")
        p.add_argument("--case", dest="case_number", help="one of the enterprise's case numbers")
        p.add_argument("--as", dest="actor", help="who answers the request (default: the login name)")
        p.add_argument("--reason", default="", help="the request this answers (letter, ticket), for the audit")
        if name == "export":
            p.add_argument("--out", type=Path, help="write to this file (default: standard output)")
        else:
            p.add_argument("--yes", action="store_true", help="really erase (without it: show what would go)")
    requests = enterprise_sub.add_parser("requests", help="the audit: who answered which request, when")
    requests.add_argument("--limit", type=int, default=50)
    enterprise.set_defaults(handler="cli_privacy:cmd_enterprise")

    limits_parser = sub.add_parser("limits", help="how often each abuse limit refused, per day and channel")
    limits_parser.add_argument("--days", type=int, default=7)
    limits_parser.set_defaults(handler="cli_privacy:cmd_limits")

    # Implemented in bot/cli_staff.py: console accounts.
    staff = sub.add_parser("staff", help="console accounts: add, passwd, disable, enable, list")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="create an account (the password is asked for, never an argument)")
    add.add_argument("login")
    add.add_argument("--name", dest="display_name", default="", help="display name (default: the login)")
    add.add_argument("--role", required=True, choices=["commissioner", "supervisor", "manager", "admin"])
    add.add_argument("--commissioner", help="handle of the commissioner the account acts as")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd = staff_sub.add_parser("passwd", help="set a new password (signs the account out everywhere)")
    passwd.add_argument("login")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    for name, helptext in (("disable", "refuse sign-ins and end the account's sessions"),
                           ("enable", "allow sign-ins again")):
        staff_sub.add_parser(name, help=helptext).add_argument("login")
    staff_sub.add_parser("list", help="accounts, roles, linked commissioners, last sign-in")
    staff.set_defaults(handler="cli_staff:cmd_staff")
    report = sub.add_parser("report", help="the manager's exports: monthly workbook, ledger (masked)")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    month = report_sub.add_parser("month", help="the monthly report (Excel, with month-on-month and year-on-year)")
    month.add_argument("month", help="YYYY-MM, Beijing time")
    ledger = report_sub.add_parser("ledger", help="the work ledger, one masked row per case opened in the month")
    ledger.add_argument("month", help="YYYY-MM, Beijing time")
    ledger.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    for p in (month, ledger):
        p.add_argument("--domain", help="only this service domain (code, e.g. metrology)")
        p.add_argument("--district", help="only this district (e.g. 湖里区)")
        p.add_argument("--site", type=int, help="only cases handled at this site (id)")
        p.add_argument("--out", type=Path, help="the file to write (default: <data dir>/exports/…)")
    report.set_defaults(handler="cli_reports:cmd_report")
