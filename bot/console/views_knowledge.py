"""``/console/knowledge``: the knowledge base in the console. Every staff member may list and
search it and see an entry's answer card (commissioners take over conversations the bot began and
should know what it told the enterprise, and the search shows what a question would get); managers
and administrators edit, publish, retire and restore entries and turn gaps into entries. Supervisors
read, like commissioners: the content is the whole platform's, not a site's, as with the canned
replies and the libraries.

An edit goes form → preview (the answer card as the bot renders it, and the linter's findings) →
publish. Publishing accepts only the content that was previewed (a fingerprint travels with the
form), refuses content with lint errors (the form comes back with what was typed), and refuses an
entry changed in another browser since the form was opened. A published edit is stored in the
database (:mod:`bot.services.kb_edits`), applied here at once and announced to every worker.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import date
from math import ceil
from typing import Any

from aiohttp import web

from bot.channels.base import ChannelDeps
from bot.console.auth import StaffPrincipal, audit, check_csrf, context, require_staff
from bot.console.lint_zh import in_chinese
from bot.console.render import page
from bot.services import kb_edits
from bot.storage.db import transaction
from bot.storage.models import KbGap
from handlers.answers import compose_answer, render_entry
from intents.labels import DOMAIN_NAMES_ZH
from knowledge.entries import DOMAINS, Entry, load_entries, parse_entry
from knowledge.lint import check_edit
from knowledge.overlay import CONSOLE_FILE, digest, form_from_entry, raw_from_form, to_raw
from knowledge.problems import Problem

EDITORS = ("manager",)  # and admin, who passes every role check
PER_PAGE = 20
MAX_QUERY = 200
MAX_FIELD = 4000  # characters per form field: an entry's answer is at most 300, its detail ~800
FIELDS = ("id", "domain", "title", "questions", "answer", "detail", "basis", "tags", "checked", "review_by", "watch")
DOMAIN_ZH = {**{d: DOMAIN_NAMES_ZH.get(d, d) for d in DOMAINS}, "platform": "平台服务"}
_ENTRY_ID = re.compile(r"^[a-z]+\.[a-z0-9]+(?:-[a-z0-9]+)*$")
_OUTCOME_ZH = {"answer": "直接回答", "suggest": "“您是不是想问”", "clarify": "先问领域", "out_of_scope": "非服务范围",
               "none": "无答案（记入缺口）"}


@dataclass
class Draft:
    """A form's content as checked: the typed fields (kept as typed), the entry when it parses,
    the problems, and the card a user would see."""

    fields: dict[str, str]
    entry: Entry | None = None
    problems: list[Problem] = field(default_factory=list)
    card: str = ""
    fingerprint: str = ""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]


def _deps(request: web.Request) -> ChannelDeps:
    return context(request).deps


def _today(deps: ChannelDeps) -> date:
    """Today in Beijing: what a curator means by the date an entry was checked."""
    return deps.clock().astimezone(deps.policy.calendar.tz).date()


def _entry_id(request: web.Request) -> str:
    entry_id = request.match_info["entry_id"]
    if len(entry_id) > 120 or not _ENTRY_ID.match(entry_id):
        raise web.HTTPNotFound(text="没有这个知识条目", content_type="text/plain")
    return entry_id


# --- list and search ----------------------------------------------------------------------------

def _matches(entry: Entry, needle: str) -> bool:
    return any(needle in text.casefold() for text in (entry.id, *entry.phrasings, *entry.tags))


async def list_page(request: web.Request) -> web.StreamResponse:
    principal = await require_staff(request)
    deps = _deps(request)
    dialogue = deps.require_dialogue()
    query = request.query.get("q", "").strip()[:MAX_QUERY]
    domain = request.query.get("domain", "").strip()
    if domain and domain not in DOMAINS:
        domain = ""
    number = request.query.get("page", "1")
    current = int(number) if number.isdigit() and len(number) < 6 else 1
    kb = dialogue.knowledge.kb
    needle = query.casefold()
    found = [e for e in kb.entries if (not domain or e.domain == domain) and (not needle or _matches(e, needle))]
    pages = max(1, ceil(len(found) / PER_PAGE))
    current = min(max(current, 1), pages)
    answer: dict[str, Any] | None = None
    if query:
        # What the bot would say to this question: the real retriever and the real composition
        # (not ``KnowledgeService.search``, which would count the staff's searches as users').
        result = kb.search(query, limit=3)
        composed = compose_answer(result, dialogue.nlu.parse(query), dialogue.texts)
        answer = {"outcome": _OUTCOME_ZH.get(composed.outcome, composed.outcome), "text": composed.text,
                  "hits": [(h.entry, h.score) for h in result.hits]}
    async with transaction(deps.sessions) as session:
        edits = {row.entry_id: row for row in await kb_edits.all_edits(session)}
    retired = sorted((row for row in edits.values() if row.state == kb_edits.RETIRED), key=lambda r: r.entry_id)
    return page(request, "knowledge/list.html", {
        "entries": found[(current - 1) * PER_PAGE: current * PER_PAGE], "total": len(found), "all": len(kb),
        "page": current, "pages": pages, "query": query, "domain": domain, "domains": DOMAIN_ZH, "answer": answer,
        "edits": edits, "retired": retired, "version": dialogue.knowledge.version,
        "editor": _is_editor(principal),
    })


def _is_editor(principal: StaffPrincipal) -> bool:
    return principal.role in (*EDITORS, "admin")


# --- one entry ------------------------------------------------------------------------------------

async def entry_page(request: web.Request) -> web.StreamResponse:
    principal = await require_staff(request)
    entry_id = _entry_id(request)
    deps = _deps(request)
    dialogue = deps.require_dialogue()
    entry = dialogue.knowledge.kb.get(entry_id)
    async with transaction(deps.sessions) as session:
        edit = await kb_edits.edit_of(session, entry_id)
    if entry is None and edit is not None and edit.state == kb_edits.RETIRED:
        entry, _ = parse_entry(edit.content, CONSOLE_FILE)
    if entry is None:
        raise web.HTTPNotFound(text="没有这个知识条目", content_type="text/plain")
    return page(request, "knowledge/entry.html", {
        "entry": entry, "card": render_entry(entry, dialogue.texts), "edit": edit, "domains": DOMAIN_ZH,
        "retired": edit is not None and edit.state == kb_edits.RETIRED, "editor": _is_editor(principal),
        "published": request.query.get("published", "") == "1", "based_on": edit.version if edit else 0,
    })


# --- the form -------------------------------------------------------------------------------------

def _render_form(request: web.Request, draft: Draft, *, original: str, based_on: int, gap: KbGap | None,
                 error: str = "", previewed: bool = False, status: int = 200) -> web.Response:
    return page(request, "knowledge/edit.html", {
        "draft": draft, "f": draft.fields, "original": original, "based_on": based_on, "gap": gap,
        "error": error, "previewed": previewed, "domains": DOMAIN_ZH, "zh": in_chinese,
    }, status=status)


async def _check(deps: ChannelDeps, fields: dict[str, str], original: str) -> Draft:
    """Parse and lint a form as a content file's entry would be, against the entries served."""
    dialogue = deps.require_dialogue()
    raw = raw_from_form(fields)
    today = _today(deps)
    entry, problems = parse_entry(raw, CONSOLE_FILE, today)
    draft = Draft(fields, entry, list(problems), fingerprint=digest(raw))
    if entry is None:
        return draft
    kb = dialogue.knowledge.kb
    if original and entry.id != original:
        draft.problems.append(Problem(CONSOLE_FILE, entry.id, "error", "the id of an existing entry cannot change"))
    if not original:
        async with transaction(deps.sessions) as session:
            retired = await kb_edits.edit_of(session, entry.id)  # a retired entry keeps its id
        if kb.get(entry.id) is not None or retired is not None:
            draft.problems.append(Problem(CONSOLE_FILE, entry.id, "error", f"id {entry.id} is already taken"))
    draft.problems.extend(await asyncio.to_thread(check_edit, entry, kb.entries, today))
    draft.card = render_entry(entry, dialogue.texts)
    return draft


async def _gap(session: Any, raw: str) -> KbGap | None:
    if not raw.isdigit() or len(raw) > 12:
        return None
    gap = await session.get(KbGap, int(raw))
    return gap if gap is not None and gap.handled_at is None else None


async def new_page(request: web.Request) -> web.StreamResponse:
    await require_staff(request, *EDITORS)
    deps = _deps(request)
    dialogue = deps.require_dialogue()
    fields = dict.fromkeys(FIELDS, "")
    fields["checked"] = _today(deps).isoformat()
    async with transaction(deps.sessions) as session:
        gap = await _gap(session, request.query.get("gap", ""))
    if gap is not None:
        # The question as it was asked becomes the first phrasing; the NLU's domain a first guess.
        fields["questions"] = gap.sample.strip()
        guess = dialogue.nlu.parse(gap.sample).domain
        if guess in DOMAINS:
            fields["domain"] = guess
            fields["id"] = f"{guess}."
    return _render_form(request, Draft(fields), original="", based_on=0, gap=gap)


async def edit_page(request: web.Request) -> web.StreamResponse:
    await require_staff(request, *EDITORS)
    entry_id = _entry_id(request)
    deps = _deps(request)
    entry = deps.require_dialogue().knowledge.kb.get(entry_id)
    async with transaction(deps.sessions) as session:
        edit = await kb_edits.edit_of(session, entry_id)
    if entry is None:
        raise web.HTTPNotFound(text="没有这个知识条目（已停用的条目请先恢复）", content_type="text/plain")
    fields = form_from_entry(entry)
    draft = await _check(deps, fields, entry_id)
    return _render_form(request, draft, original=entry_id, based_on=edit.version if edit else 0, gap=None,
                        previewed=not draft.errors)


async def _form(request: web.Request) -> dict[str, str]:
    form = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
    await check_csrf(request, form)
    return form


async def save(request: web.Request) -> web.StreamResponse:
    """``POST /console/knowledge/edit``: ``action=preview`` checks and shows; ``action=publish``
    stores what was previewed when it has no errors."""
    principal = await require_staff(request, *EDITORS)
    form = await _form(request)
    deps = _deps(request)
    fields = {name: form.get(name, "")[:MAX_FIELD].replace("\r\n", "\n") for name in FIELDS}
    original = form.get("original", "").strip()
    if original and not _ENTRY_ID.match(original):
        raise web.HTTPBadRequest(text="表单不完整", content_type="text/plain")
    based_raw = form.get("based_on", "0")
    based_on = int(based_raw) if based_raw.isdigit() and len(based_raw) < 10 else 0
    async with transaction(deps.sessions) as session:
        gap = await _gap(session, form.get("gap", ""))
    draft = await _check(deps, fields, original)

    def again(error: str = "", status: int = 200, previewed: bool = True) -> web.Response:
        return _render_form(request, draft, original=original, based_on=based_on, gap=gap, error=error,
                            previewed=previewed and not draft.errors, status=status)

    if form.get("action") != "publish":
        return again()
    if draft.entry is None or draft.errors:
        return again("内容有错误，未发布。请按下方“检查结果”修改后再预览、发布；您填写的内容都还在。", status=400)
    if form.get("previewed", "") != draft.fingerprint:
        return again("内容在预览之后有改动：请核对下方新的预览和检查结果，再点“发布”。", status=409)
    entry = draft.entry
    sync = deps.knowledge_sync
    try:
        async with transaction(deps.sessions) as session:
            version = await kb_edits.publish(session, entry, by=principal.login, now=deps.clock(), based_on=based_on)
            detail = f"{entry.id} v{version}：{entry.title}"
            if gap is not None and await kb_edits.mark_gap_handled(session, gap.id, entry.id, principal.login,
                                                                   deps.clock()):
                detail += f"（由知识库缺口 #{gap.id} “{gap.sample[:40]}”）"
            await audit(session, principal, "kb_publish" if original else "kb_create", None, detail)
    except kb_edits.EditConflict:
        return again("该条目在您打开表单后已被他人修改并发布。请重新打开条目，在最新内容上修改。",
                     status=409, previewed=False)
    if sync is not None:
        await sync.catch_up()  # this worker first, so the page after the redirect shows the new entry
        await sync.announce(version)
    raise web.HTTPSeeOther(f"/console/knowledge/entry/{entry.id}?published=1")


async def change_state(request: web.Request) -> web.StreamResponse:
    """``POST /console/knowledge/entry/{id}/state``: ``action=retire`` takes an entry out of the
    answers (kept, and listed as retired), ``action=restore`` puts it back, ``action=revert``
    drops the console's edit so the content file's version is served again."""
    principal = await require_staff(request, *EDITORS)
    entry_id = _entry_id(request)
    form = await _form(request)
    action = form.get("action", "")
    deps = _deps(request)
    based_raw = form.get("based_on", "0")
    based_on = int(based_raw) if based_raw.isdigit() and len(based_raw) < 10 else 0
    kb = deps.require_dialogue().knowledge.kb
    try:
        async with transaction(deps.sessions) as session:
            edit = await kb_edits.edit_of(session, entry_id)
            if action == "retire":
                entry = kb.get(entry_id)
                if entry is None:
                    raise web.HTTPNotFound(text="没有这个知识条目", content_type="text/plain")
                content, state = to_raw(entry), kb_edits.RETIRED
            elif action == "restore":
                if edit is None or edit.state != kb_edits.RETIRED:
                    raise web.HTTPNotFound(text="这个条目没有停用", content_type="text/plain")
                restored, _ = parse_entry(edit.content, CONSOLE_FILE)
                if restored is None or kb.get(entry_id) is not None:
                    raise web.HTTPConflict(text="这个条目无法恢复", content_type="text/plain")
                content, state = edit.content, kb_edits.PUBLISHED
            elif action == "revert":
                if edit is None or edit.state != kb_edits.PUBLISHED:
                    raise web.HTTPNotFound(text="这个条目没有控制台修改", content_type="text/plain")
                if entry_id not in await asyncio.to_thread(_file_ids, deps):
                    raise web.HTTPConflict(text="这是控制台新建的条目，没有文件版本可恢复；不再需要时请停用。",
                                           content_type="text/plain")
                content, state = edit.content, ""
            else:
                raise web.HTTPBadRequest(text="未知的操作", content_type="text/plain")
            if action == "revert":
                version = await kb_edits.revert(session, entry_id, based_on=based_on)
            else:
                version = await kb_edits.save(session, entry_id, state, content, by=principal.login,
                                              now=deps.clock(), based_on=based_on)
            await audit(session, principal, f"kb_{action}", None, f"{entry_id} v{version}：{content.get('title', '')}")
    except kb_edits.EditConflict:
        raise web.HTTPConflict(text="该条目已被他人修改，请刷新页面后重试。", content_type="text/plain") from None
    if deps.knowledge_sync is not None:
        await deps.knowledge_sync.catch_up()
        await deps.knowledge_sync.announce(version)
    raise web.HTTPSeeOther(f"/console/knowledge/entry/{entry_id}?published=1")


def _file_ids(deps: ChannelDeps) -> set[str]:
    """The ids of the content files' entries (the base the console's edits lie over)."""
    return {e.id for e in load_entries(deps.require_dialogue().knowledge.directory)}


def setup(app: web.Application) -> None:
    app.router.add_get("/console/knowledge", list_page)
    app.router.add_get("/console/knowledge/new", new_page)
    app.router.add_post("/console/knowledge/edit", save)
    app.router.add_get("/console/knowledge/entry/{entry_id}", entry_page)
    app.router.add_get("/console/knowledge/entry/{entry_id}/edit", edit_page)
    app.router.add_post("/console/knowledge/entry/{entry_id}/state", change_state)
