"""Demand intake (需求大厅): collect what is missing, confirm, open a numbered case, and tell the
enterprise in one message everything to prepare (一次性告知).

The profile (name, credit code, contact, mobile, district) is kept on the enterprise, so a second
demand asks nothing already known. Every step is persisted in the conversation state, so a
restart mid-intake resumes at the same question. "取消" at any point abandons cleanly.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.messages import Reply
from bot.privacy import mask_name
from bot.services import cases, enterprises, notices
from bot.services.enterprises import existing_enterprise, profile_of
from bot.storage.models import Commissioner
from handlers import consent, guard, signals
from handlers.base import Match, Outcome, TurnContext
from handlers.knowledge import LAST_DOMAIN
from handlers.words import bare
from intents import yamlfile
from intents.extract import find_case_numbers, find_credit_codes, find_mobiles
from intents.labels import DOMAIN_NAMES_ZH, DOMAINS
from intents.normalize import normalize

INTAKE_FLOW = "intake"
DATA_FILE = Path(__file__).parent / "data" / "intake.yaml"
ORG_NAMES_FILE = Path(__file__).parent / "data" / "org_names.yaml"
DISTRICTS_FILE = Path(__file__).parent / "data" / "districts.yaml"
PROFILE_ORDER = ("name", "credit_code", "contact_name", "mobile", "district")
CASE_ORDER = ("description", "mode")
# An opening message with at least this much left beside "我要办理" describes the demand; less
# ("我要办理 检验检测") names only the service, so the description is still asked.
_MIN_DESCRIPTION = 6
# Requests that are never the answer to a question of the form: the form steps aside for them
# (a progress query too, when its words say so: the classifier takes "上门" for one).
_ASIDE_REQUESTS: tuple[signals.Request, ...] = ("handoff", "complaint", "menu")
# Questions with an answer that can be checked (a number, a code, a district): a question there
# that does not parse as the answer is a question of its own ("信用代码在哪里看？").
_CHECKED = frozenset({"domain", "name", "credit_code", "mobile", "district", "mode"})


@dataclass(frozen=True)
class IntakeVocabulary:
    accept_offer: frozenset[str]
    confirm: frozenset[str]
    skip: frozenset[str]
    cancel: frozenset[str]
    fields: dict[str, tuple[str, ...]]
    modes: dict[str, frozenset[str]]
    modes_in_description: dict[str, tuple[str, ...]]
    mode_negations: tuple[str, ...]
    progress_words: tuple[str, ...]
    labels: dict[str, str]


@lru_cache(maxsize=1)
def vocabulary() -> IntakeVocabulary:
    data = yamlfile.read(DATA_FILE)
    return IntakeVocabulary(
        accept_offer=frozenset(str(w) for w in data["accept_offer"]),
        confirm=frozenset(str(w) for w in data["confirm"]),
        skip=frozenset(str(w) for w in data["skip"]),
        cancel=frozenset(str(w) for w in data["cancel"]),
        # longest names first so "手机号码" wins over "手机"
        fields={k: tuple(sorted(v, key=len, reverse=True)) for k, v in data["fields"].items()},
        modes={k: frozenset(str(w) for w in v) for k, v in data["modes"].items()},
        modes_in_description={k: tuple(bare(str(w)) for w in v) for k, v in data["modes_in_description"].items()},
        mode_negations=tuple(sorted((bare(str(w)) for w in data["mode_negations"]), key=len, reverse=True)),
        progress_words=tuple(bare(str(w)) for w in data["progress_words"]),
        labels={str(k): str(v) for k, v in data["labels"].items()},
    )


# --- field parsing: each returns (value, error text key) -----------------------------------------

def parse_domain(text: str) -> str | None:
    word = bare(text)
    if word.isdigit() and 1 <= int(word) <= len(DOMAINS):
        return DOMAINS[int(word) - 1]
    for domain in DOMAINS:
        if DOMAIN_NAMES_ZH[domain] in word:
            return domain
    return None


@dataclass(frozen=True)
class Places:
    districts: tuple[tuple[str, str], ...]  # (word, district), longest word first
    hints: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]  # (vague words, the districts they may mean)


@lru_cache(maxsize=1)
def places() -> Places:
    data = yamlfile.read(DISTRICTS_FILE)
    pairs = [(bare(str(w)), str(d)) for d, words in data["districts"].items() for w in (d, *words)]
    hints = tuple((tuple(bare(str(w)) for w in h["words"]), tuple(str(d) for d in h["districts"]))
                  for h in data["hints"].values())
    return Places(tuple(sorted(pairs, key=lambda p: len(p[0]), reverse=True)), hints)


@lru_cache(maxsize=1)
def org_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(name suffixes longest first, openers that make a message a command) from org_names.yaml."""
    data = yamlfile.read(ORG_NAMES_FILE)
    suffixes = sorted({str(w).casefold() for w in data["suffixes"]}, key=len, reverse=True)
    return tuple(suffixes), tuple(str(w) for w in data["not_a_name_openers"])


_TRAILING_BRACKET = re.compile(r"\s*[(（][^()（）]{1,12}[)）]\s*$")  # "（普通合伙）", "(厦门)"


def name_command(text: str) -> bool:
    """A command typed where the name was asked ("修改单位名称", "取消")."""
    return bare(text).startswith(org_names()[1])


def parse_name(text: str) -> str | None:
    """An organisation's name: it ends like one ("…有限公司", "…厂", "…研究院", "… Co., Ltd."),
    with something before the ending; a command is never a name."""
    name = text.strip().strip("。.，,")
    if not 4 <= len(name) <= 100 or name_command(name):
        return None
    core = _TRAILING_BRACKET.sub("", normalize(name).text).strip(" .")
    for suffix in org_names()[0]:  # the longest ending decides: "有限公司" alone is no name
        if core.endswith(suffix):
            return name if len(core) - len(suffix) >= 2 else None
    return None


def parse_contact(text: str) -> str | None:
    name = re.sub(r"^(联系人|我叫|我是|叫|姓名)[:：\s]*", "", text.strip())
    return name if 1 <= len(name) <= 30 and not any(ch.isdigit() for ch in name) else None


# A landline with its area code: 0592-5123456, (0592)5123456, 0592 512 3456, 010-12345678 转 8001;
# and the 400/800 service numbers. On the NFKC text (full-width digits and dashes folded).
_LANDLINE = re.compile(
    r"(?<!\d)\(?(0\d{2,3})\)?[\s\-－—–]*(\d{3,4})[\s\-－—–]?(\d{4})(?!\d)"
    r"(?:\s*(?:转|轉|分机|分機|ext\.?|x|-)\s*(\d{1,6}))?",
    re.IGNORECASE,
)
_SERVICE_NUMBER = re.compile(r"(?<!\d)([48]00)[\s\-－—–]*(\d{3})[\s\-－—–]*(\d{4})(?!\d)")


def parse_phone(text: str) -> str | None:
    """The contact number: a mobile (bare 11 digits), else a landline with its area code
    ("0592-5123456", "0592-5123456转801") or a 400/800 number."""
    found = find_mobiles(text)
    if found:
        return found[0]
    clean = unicodedata.normalize("NFKC", text)
    if match := _LANDLINE.search(clean):
        area, head, tail, extension = match.groups()
        if 7 <= len(head + tail) <= 8 and not (len(area) == 3 and len(head + tail) == 7):
            return f"{area}-{head}{tail}" + (f"转{extension}" if extension else "")
    if match := _SERVICE_NUMBER.search(clean):
        return "-".join(match.groups())
    return None


def find_districts(text: str) -> list[str]:
    """The Xiamen districts a text names (by district or a town in it), in order of appearance."""
    word = bare(text)
    found: list[tuple[int, str]] = []
    for name, district in places().districts:
        at = word.find(name)
        if at >= 0 and district not in (d for _, d in found):
            found.append((at, district))
    return [d for _, d in sorted(found)]


def parse_district(text: str) -> str | None:
    """One of Xiamen's districts, in any common form ("思明", "厦门市湖里区", "在杏林")."""
    named = find_districts(text)
    return named[0] if len(named) == 1 else None


def district_hint(text: str) -> tuple[str, ...]:
    """The districts a vague answer may mean ("岛内" → 思明区, 湖里区); empty if none."""
    word = bare(text)
    named = find_districts(text)
    if len(named) > 1:
        return tuple(named)
    for words, districts in places().hints:
        if any(w in word for w in words):
            return districts
    return ()


def parse_mode(text: str) -> str | None:
    word = bare(text)
    for mode, words in vocabulary().modes.items():
        if word in words or any(len(w) > 1 and w in word for w in words):
            return mode
    return None


def mode_in_description(description: str) -> str | None:
    """The service mode a demand's description states outright ("希望下周上门" → onsite), unless
    negated right before ("不用上门") or both modes are named; None when it says neither."""
    words = vocabulary()
    text = bare(description)
    found = set()
    for mode, phrases in words.modes_in_description.items():
        for phrase in phrases:
            start = text.find(phrase)
            while start >= 0:
                if not any(text[:start].endswith(negation) for negation in words.mode_negations):
                    found.add(mode)
                start = text.find(phrase, start + 1)
    return found.pop() if len(found) == 1 else None


def parse_description(text: str) -> str | None:
    return text.strip() if len(bare(text)) >= 4 else None


_PARSERS = {
    "domain": parse_domain, "name": parse_name, "contact_name": parse_contact, "mobile": parse_phone,
    "district": parse_district, "description": parse_description, "mode": parse_mode,
}

# Corrections typed at the summary: "需求描述改成：…", "手机改为1390…", "把联系人改成王经理",
# "修改手机 1390…". Matched on the text as typed (Simplified or Traditional).
_CORRECTION_LEAD = re.compile(
    r"^(?:请|請|麻烦|麻煩)?(?:帮我|幫我|帮忙|幫忙)?(?:把|将|將)?\s*(?:修改|更改|更正|改正|改)?\s*(?:一下)?\s*(?:把|将|將)?\s*")
_CORRECTION_VERB = re.compile(
    r"^\s*(?:应该?|應該?|要)?(?:改成|改为|改為|换成|換成|更正为|更正為|更改为|更改為|修改为|修改為|改|为|為|成|是)?"
    r"\s*[:：=]?\s*")
_CHANGE = re.compile(r"修改|更改|更正|改正|改成|改为|改為|换成|換成")
_SAYS_VALUE = re.compile(r"[:：=]|应为|應為|应该是|應該是")


@lru_cache(maxsize=1)
def field_names() -> tuple[tuple[str, str], ...]:
    """(name as users say it, field), longest first across fields ("联系电话" before "联系人")."""
    pairs = [(bare(name), field) for field, names in vocabulary().fields.items() for name in names]
    return tuple(sorted(pairs, key=lambda p: len(p[0]), reverse=True))


class IntakeHandler:
    name = "intake"
    flows = frozenset({INTAKE_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        words = vocabulary()
        word = bare(ctx.message.text)
        if ctx.state.flow == INTAKE_FLOW:
            if word in words.cancel:
                return Match("cancel")
            return Match("continue")
        if signals.is_demand(ctx):
            return Match("start")
        if ctx.state.data.get(LAST_DOMAIN) and word in words.accept_offer:
            return Match("start", {"domain": ctx.state.data[LAST_DOMAIN]})
        return None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        if match.reason == "cancel":
            ctx.state.clear()
            return Outcome((ctx.say("intake_cancelled"),))
        if match.reason == "start":
            refused = await guard.refused(ctx, "case", consume=False)  # say so now, not after the form
            if refused is not None:
                return refused
            return await self._start(ctx, match.data.get("domain"))
        return await self._continue(ctx)

    async def _start(self, ctx: TurnContext, offered_domain: str | None) -> Outcome:
        """Keep what the opening message already says, so it is never asked again: the service
        it names ("检定" → 计量) and the demand itself ("帮我们安排一下检定，有3台加油机") as the
        description. The summary shows both before anything is submitted, so a wrong guess is
        corrected there ("修改 领域")."""
        domain = offered_domain or signals.demand_domain(ctx)
        if domain is None and ctx.state.data.get(LAST_DOMAIN) in DOMAINS:
            domain = ctx.state.data[LAST_DOMAIN]
        collected: dict[str, Any] = {"domain": domain}
        remainder = signals.demand_remainder(ctx.message.text) if offered_domain is None else ""
        if len(bare(remainder)) >= _MIN_DESCRIPTION:
            collected["description"] = remainder
        ctx.state.enter(INTAKE_FLOW, collected=collected)
        intro = ctx.say("intake_start", domain_name=DOMAIN_NAMES_ZH.get(domain or "", ""),
                        description=collected.get("description", ""))
        return Outcome((intro, *(await self._next_question(ctx))))

    async def _continue(self, ctx: TurnContext) -> Outcome:
        data = ctx.state.data
        collected: dict[str, Any] = data.setdefault("collected", {})
        asking = data.get("asking")
        text = ctx.message.text
        if asking in consent.PERSONAL_FIELDS and ctx.state.data.get(consent.NOTICE_SHOWN) and consent.declined(ctx):
            ctx.state.clear()  # no consent: nothing typed so far is kept
            return Outcome((ctx.say("privacy_declined"),))
        if ctx.message.kind != "text":  # a photo, a voice message, a location in the middle of the form
            return await self._not_text(ctx, collected, asking)
        if self._something_else(ctx, asking):
            return await self._aside(ctx)

        if asking == "summary":
            return await self._at_summary(ctx, collected)
        if asking == "which_field":
            correction = self._correction(text)
            if correction is None:
                return Outcome((ctx.say("intake_which_field"),))
            field, value = correction
            if value:  # "手机 13900001234": the field and its new value at once
                return await self._correct(ctx, collected, field, value)
            return self._ask(ctx, field, correcting=True)

        refused = self._take(ctx, str(asking), text, collected)
        if refused is not None:
            return refused
        if asking in consent.PERSONAL_FIELDS:  # given after the privacy notice: the consent
            await consent.consented(ctx, "intake")
        if data.pop("correcting", False):
            data["asking"] = "summary"
            return Outcome((await self._summary(ctx, collected),))
        return Outcome(tuple(await self._next_question(ctx)))

    def _take(self, ctx: TurnContext, field: str, text: str, collected: dict[str, Any]) -> Outcome | None:
        """Store the answer to ``field``; the reply that asks again when it is not one."""
        data, words = ctx.state.data, vocabulary()
        if field == "credit_code":
            pending = data.get("credit_code_pending")
            if pending and bare(text) in words.confirm:
                collected["credit_code"], collected["credit_code_valid"] = pending, False
                data.pop("credit_code_pending", None)
                return None
            codes = find_credit_codes(text)
            if not codes:
                return Outcome((ctx.say("intake_invalid_credit_code"),))
            code = codes[0]
            if not code.valid and pending != code.code:
                data["credit_code_pending"] = code.code  # ask once to confirm, never accept silently
                return Outcome((ctx.say("intake_credit_code_check_failed", code=code.code),))
            collected["credit_code"], collected["credit_code_valid"] = code.code, code.valid
            data.pop("credit_code_pending", None)
            return None
        if field == "name":
            pending = data.pop("name_pending", None)
            if pending and bare(text) in words.confirm:  # an irregular registered name, confirmed
                collected["name"] = pending
                return None
            name = parse_name(text)
            if name is None:
                if name_command(text) or len(text.strip()) < 4 or signals.is_question(ctx):
                    return Outcome((ctx.say("intake_invalid_name"),))
                data["name_pending"] = text.strip().strip("。.，,")  # asked once, then taken on "确认"
                return Outcome((ctx.say("intake_name_check", name=data["name_pending"]),))
            collected["name"] = name
            return None
        if field in _PARSERS:
            value = _PARSERS[field](text)
            if value is None:
                if field == "district" and (hinted := district_hint(text)):
                    return Outcome((ctx.say("intake_district_hint", districts="、".join(hinted)),))
                return Outcome((ctx.say(f"intake_invalid_{field}"),))
            collected[field] = value
        return None

    @staticmethod
    def _correction(text: str) -> tuple[str, str] | None:
        """A field named, with what comes after it: "修改 手机" → ("mobile", ""), "手机改为1390…"
        → ("mobile", "1390…"), "需求描述改成：…", "把联系人改成王经理", "联系电话：0592-…"."""
        rest = _CORRECTION_LEAD.sub("", text.strip())
        for name, field in field_names():
            if bare(rest[: len(name)]) == name:
                return field, _CORRECTION_VERB.sub("", rest[len(name):]).strip(" ，,。")
        return None

    async def _correct(self, ctx: TurnContext, collected: dict[str, Any], field: str, value: str) -> Outcome:
        """A new value typed in free form at the summary: taken like the answer to that
        question, then the summary again; if it is not a valid value, that question is asked."""
        data = ctx.state.data
        data["asking"], data["correcting"] = field, True
        refused = self._take(ctx, field, value, collected)
        if refused is not None:
            return refused
        data.pop("correcting", None)
        data["asking"] = "summary"
        label = vocabulary().labels.get(field, field)
        return Outcome((ctx.say("intake_corrected", field_name=label), await self._summary(ctx, collected)))

    @staticmethod
    def _something_else(ctx: TurnContext, asking: str | None) -> bool:
        """The message is not the answer to the pending question but a request or a question
        of its own: a progress query, a handoff, a complaint, the menu; or a question where the
        answer is a checked value and the message is not one ("计量和检测有什么区别？" at the
        service question, "信用代码在哪里看？" at the code). A description may be put as a
        question ("能帮我们检定加油机吗？"), a contact name never is."""
        text, words = ctx.message.text, vocabulary()
        word = bare(text)
        if word in words.confirm or word in words.skip or len(word) <= 1:
            return False  # "确认", "是", "1": answers, whatever the classifier makes of them
        if asking in ("summary", "which_field") and IntakeHandler._correction(text) is not None:
            return False  # "把联系人改成王经理" (which the classifier takes for a handoff)
        question = signals.is_question(ctx)
        if asking in _CHECKED:
            answer = bool(find_credit_codes(text)) if asking == "credit_code" else _PARSERS[asking](text) is not None
            if answer and not (asking == "domain" and question and len(word) > 6):
                return False
        if signals.new_request(ctx, _ASIDE_REQUESTS) is not None:
            return True
        if asking != "description" and (find_case_numbers(text) or any(w in word for w in words.progress_words)):
            return True
        return question and (asking in _CHECKED or asking == "contact_name")

    async def _not_text(self, ctx: TurnContext, collected: dict[str, Any], asking: str | None) -> Outcome:
        """A location names the district when it is still missing; anything else (a photo, a
        voice message WeChat did not transcribe) is answered as itself, then the form goes on."""
        if ctx.message.kind == "location" and not collected.get("district"):
            district = parse_district(ctx.message.text)
            if district is not None:
                collected["district"] = district
                noted = ctx.say("intake_location_noted", district=district)
                if asking == "district":
                    return Outcome((noted, *(await self._next_question(ctx))))
                return Outcome((noted, await self._pending_question(ctx, collected)))
        return await self._aside(ctx)

    async def _aside(self, ctx: TurnContext) -> Outcome:
        """Let the other handlers answer this message, then ask the pending question again."""
        question = await self._pending_question(ctx, ctx.state.data.get("collected", {}))
        resume = ctx.say("intake_resume", question=question.text, choices=question.choices)
        return Outcome((), then_dispatch=True, resume=(resume,))

    async def _pending_question(self, ctx: TurnContext, collected: dict[str, Any]) -> Reply:
        asking = ctx.state.data.get("asking")
        if asking == "summary":
            return await self._summary(ctx, collected)
        if asking == "which_field":
            return ctx.say("intake_which_field")
        if asking == "credit_code" and ctx.state.data.get("credit_code_pending"):
            return ctx.say("intake_credit_code_check_failed", code=ctx.state.data["credit_code_pending"])
        return self._ask(ctx, str(asking), correcting=bool(ctx.state.data.get("correcting"))).replies[-1]

    async def _at_summary(self, ctx: TurnContext, collected: dict[str, Any]) -> Outcome:
        text = ctx.message.text
        if bare(text) in vocabulary().confirm:
            return await self._submit(ctx, collected)
        correction = self._correction(text)
        if correction is not None:
            field, value = correction
            # "手机 13900001234" corrects too (the value is one); "公司今天没人" does not
            if value and (_CHANGE.search(text) or _SAYS_VALUE.search(text) or self._is_value(field, value)):
                return await self._correct(ctx, collected, field, value)
            if not value:  # "修改 手机", or just "手机": ask for it
                return self._ask(ctx, field, correcting=True)
        if _CHANGE.search(text):
            ctx.state.data["asking"] = "which_field"
            return Outcome((ctx.say("intake_which_field"),))
        return Outcome((ctx.say("intake_summary_hint", choices=("确认", "取消")),))

    @staticmethod
    def _is_value(field: str, value: str) -> bool:
        if field == "credit_code":
            return bool(find_credit_codes(value))
        return field in _PARSERS and _PARSERS[field](value) is not None

    def _ask(self, ctx: TurnContext, field: str, *, correcting: bool = False) -> Outcome:
        ctx.state.data["asking"] = field
        if correcting:
            ctx.state.data["correcting"] = True
        if field == "domain":
            names = [DOMAIN_NAMES_ZH[d] for d in DOMAINS]
            return Outcome((ctx.say("intake_ask_domain", names=names, choices=tuple(str(i) for i in range(1, 8))),))
        choices = ("1", "2") if field == "mode" else ()
        return Outcome((ctx.say(f"intake_ask_{field}", choices=choices),))

    async def _next_question(self, ctx: TurnContext) -> list[Reply]:
        collected = ctx.state.data["collected"]
        if not collected.get("mode") and collected.get("description"):
            stated = mode_in_description(str(collected["description"]))
            if stated is not None:  # said in the demand itself: shown in the summary, not asked
                collected["mode"] = stated
        profile = profile_of(await existing_enterprise(ctx.session, ctx.identity))
        for field in ("domain", *PROFILE_ORDER, *CASE_ORDER):
            if collected.get(field):
                continue
            if field in PROFILE_ORDER and getattr(profile, field):
                collected[field] = getattr(profile, field)
                if field == "credit_code":
                    collected["credit_code_valid"] = profile.credit_code_valid
                continue
            if field in consent.PERSONAL_FIELDS:  # the privacy notice comes with the first such question
                shown = await consent.notice(ctx, tuple(
                    f for f in consent.PERSONAL_FIELDS if not collected.get(f) and not getattr(profile, f)))
                if shown is not None:
                    return [shown, *self._ask(ctx, field).replies]
            return list(self._ask(ctx, field).replies)
        ctx.state.data["asking"] = "summary"
        return [await self._summary(ctx, collected)]

    async def _summary(self, ctx: TurnContext, collected: dict[str, Any]) -> Reply:
        return ctx.say(
            "intake_summary",
            domain_name=DOMAIN_NAMES_ZH[collected["domain"]],
            name=collected["name"],
            credit_code=collected["credit_code"],
            credit_code_unverified=collected.get("credit_code_valid") is False,
            contact_name=collected["contact_name"],
            mobile=collected["mobile"],
            district=collected["district"],
            description=collected["description"],
            mode_name=cases.MODE_ZH[collected["mode"]],
            choices=("确认", "取消"),
        )

    async def _submit(self, ctx: TurnContext, collected: dict[str, Any]) -> Outcome:
        refused = await guard.refused(ctx, "case")
        if refused is not None:
            ctx.state.clear()
            return refused
        enterprise = await enterprises.enterprise_for(ctx.session, ctx.identity)
        enterprises.update_profile(enterprise, {k: collected[k] for k in PROFILE_ORDER})
        enterprise.credit_code_valid = collected.get("credit_code_valid")
        case = await cases.open_case(
            ctx.session, enterprise=enterprise, identity=ctx.identity, domain=collected["domain"],
            description=collected["description"], mode=collected["mode"], district=collected["district"],
            now=ctx.now, public_url=ctx.policy.public_url, policy=ctx.policy,
        )
        ctx.state.clear()
        demand = f"{collected['description']} {cases.MODE_ZH.get(collected['mode'], '')}"
        service = notices.notice_for(collected["domain"], demand)
        owner = await ctx.session.get(Commissioner, case.assignee_id) if case.assignee_id else None
        return Outcome((ctx.say(
            "intake_submitted", number=case.number, owner=mask_name(owner.name) if owner else "",
            service_name=service["name"], materials=service["materials"], typical_time=service["typical_time"],
            fees=service["fees"],
        ),))
