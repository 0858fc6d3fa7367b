"""Demand intake (需求大厅): collect what is missing, confirm, open a numbered case, and tell the
enterprise in one message everything to prepare (一次性告知).

The profile (name, credit code, contact, mobile, district) is kept on the enterprise, so a second
demand asks nothing already known. Every step is persisted in the conversation state, so a
restart mid-intake resumes at the same question. "取消" at any point abandons cleanly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.messages import Reply
from bot.privacy import mask_name
from bot.services import cases, enterprises, notices
from bot.services.enterprises import XIAMEN_DISTRICTS, existing_enterprise, profile_of
from bot.storage.models import Commissioner
from handlers import consent, guard, signals
from handlers.base import Match, Outcome, TurnContext
from handlers.knowledge import LAST_DOMAIN
from handlers.words import bare
from intents.extract import find_case_numbers, find_credit_codes, find_mobiles
from intents.labels import DOMAIN_NAMES_ZH, DOMAINS

INTAKE_FLOW = "intake"
DATA_FILE = Path(__file__).parent / "data" / "intake.yaml"
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
    progress_words: tuple[str, ...]


@lru_cache(maxsize=1)
def vocabulary() -> IntakeVocabulary:
    data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    return IntakeVocabulary(
        accept_offer=frozenset(str(w) for w in data["accept_offer"]),
        confirm=frozenset(str(w) for w in data["confirm"]),
        skip=frozenset(str(w) for w in data["skip"]),
        cancel=frozenset(str(w) for w in data["cancel"]),
        # longest names first so "手机号码" wins over "手机"
        fields={k: tuple(sorted(v, key=len, reverse=True)) for k, v in data["fields"].items()},
        modes={k: frozenset(str(w) for w in v) for k, v in data["modes"].items()},
        progress_words=tuple(bare(str(w)) for w in data["progress_words"]),
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


def parse_name(text: str) -> str | None:
    name = text.strip().strip("。.")
    return name if 4 <= len(name) <= 100 else None


def parse_contact(text: str) -> str | None:
    name = re.sub(r"^(联系人|我叫|我是|叫|姓名)[:：\s]*", "", text.strip())
    return name if 1 <= len(name) <= 30 and not any(ch.isdigit() for ch in name) else None


def parse_mobile(text: str) -> str | None:
    found = find_mobiles(text)
    return found[0] if found else None


def parse_district(text: str) -> str | None:
    word = bare(text)
    for district in XIAMEN_DISTRICTS:
        if district in word:
            return district + "区"
    word = re.sub(r"^(在|位于|我们在)", "", word)
    return word if 2 <= len(word) <= 20 and not word.isdigit() else None


def parse_mode(text: str) -> str | None:
    word = bare(text)
    for mode, words in vocabulary().modes.items():
        if word in words or any(len(w) > 1 and w in word for w in words):
            return mode
    return None


def parse_description(text: str) -> str | None:
    return text.strip() if len(bare(text)) >= 4 else None


_PARSERS = {
    "domain": parse_domain, "name": parse_name, "contact_name": parse_contact, "mobile": parse_mobile,
    "district": parse_district, "description": parse_description, "mode": parse_mode,
}


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
        words = vocabulary()
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
            field = self._field_named(bare(text))
            if field is None:
                return Outcome((ctx.say("intake_which_field"),))
            return self._ask(ctx, field, correcting=True)

        if asking == "credit_code":
            pending = data.get("credit_code_pending")
            if pending and bare(text) in words.confirm:
                collected["credit_code"], collected["credit_code_valid"] = pending, False
                data.pop("credit_code_pending", None)
            else:
                codes = find_credit_codes(text)
                if not codes:
                    return Outcome((ctx.say("intake_invalid_credit_code"),))
                code = codes[0]
                if not code.valid and pending != code.code:
                    data["credit_code_pending"] = code.code  # ask once to confirm, never accept silently
                    return Outcome((ctx.say("intake_credit_code_check_failed", code=code.code),))
                collected["credit_code"], collected["credit_code_valid"] = code.code, code.valid
                data.pop("credit_code_pending", None)
        elif asking in _PARSERS:
            value = _PARSERS[asking](text)
            if value is None:
                key = f"intake_invalid_{'domain' if asking == 'domain' else asking}"
                return Outcome((ctx.say(key),))
            collected[asking] = value
        if asking in consent.PERSONAL_FIELDS:  # given after the privacy notice: the consent
            await consent.consented(ctx, "intake")
        if data.pop("correcting", False):
            data["asking"] = "summary"
            return Outcome((await self._summary(ctx, collected),))
        return Outcome(tuple(await self._next_question(ctx)))

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

    def _field_named(self, word: str) -> str | None:
        for field, names in vocabulary().fields.items():
            if any(name in word for name in names):
                return field
        return None

    async def _at_summary(self, ctx: TurnContext, collected: dict[str, Any]) -> Outcome:
        word = bare(ctx.message.text)
        if word in vocabulary().confirm:
            return await self._submit(ctx, collected)
        if word.startswith(("修改", "改", "更正", "更改")) or "修改" in word:
            field = self._field_named(word)
            if field is None:
                ctx.state.data["asking"] = "which_field"
                return Outcome((ctx.say("intake_which_field"),))
            return self._ask(ctx, field, correcting=True)
        return Outcome((await self._summary(ctx, collected),))

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
            now=ctx.now, public_url=ctx.policy.public_url,
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
