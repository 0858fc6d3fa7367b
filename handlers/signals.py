"""What a message asks for, beyond the classifier's one best act.

Flows that wait for a free answer (the comment after a rating, a commissioner's question about a
case) must tell an answer ("没有", "是的，都是收银台用的", "好的，明天几点到？") from a new request
("我的需求进度", "帮我们安排一下检定", "转人工"); and a complaint or a handoff is acted on only
when the user clearly asks for it, because filing a complaint or opening a case on a misread
message is worse than asking once. The classifier's confidence decides part of that, and the
vocabulary in ``data/signals.yaml`` the rest, so a retrained model cannot make the bot file a
complaint about "电话打不通" or miss "想提交服务需求".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from handlers.base import TurnContext
from handlers.words import bare, strip_punct
from intents import yamlfile
from intents.extract import find_case_numbers
from intents.labels import DOMAINS

DATA_FILE = Path(__file__).parent / "data" / "signals.yaml"
INTAKE_FILE = Path(__file__).parent / "data" / "intake.yaml"

#: A complaint act at least this sure is filed at once; below, the bot asks "您是要投诉吗？".
COMPLAINT_SURE = 0.8
#: A handoff act below this opens nothing unless the message names a person ("人工", "客服"):
#: opening a case and paging a commissioner on noise costs a person's time.
HANDOFF_SURE = 0.6
#: The classifier's domain names a demand's service only when it is at least this sure.
DOMAIN_SURE = 0.5

Request = Literal["demand", "progress", "handoff", "complaint", "cancel", "question", "menu"]
ALL_REQUESTS: tuple[Request, ...] = ("demand", "progress", "handoff", "complaint", "cancel", "question", "menu")


class Words:
    """Words matched as ``signals.yaml`` says: Chinese ones as substrings of the text without
    spaces and punctuation, English ones at the start of a word of the normalised text."""

    def __init__(self, words: Iterable[object]) -> None:
        listed = [str(w).casefold() for w in words]
        self.cjk = tuple(strip_punct(w) for w in listed if not w.isascii())
        latin = sorted((w for w in listed if w.isascii()), key=len, reverse=True)
        self._latin = re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(w) for w in latin) + ")") if latin \
            else None

    def found(self, said: Said) -> bool:
        return any(w in said.bare for w in self.cjk) or (self._latin is not None
                                                          and self._latin.search(said.text) is not None)


def _whole(words: Iterable[object]) -> frozenset[str]:
    """Whole-message answers, compared with the message without spaces and punctuation."""
    return frozenset(bare(str(w)) for w in words)


@dataclass(frozen=True)
class Vocabulary:
    triggers: tuple[str, ...]
    demand_phrases: Words
    strong_requests: Words
    weak_requests: Words
    open_questions: Words
    yes_no_questions: Words
    services: dict[str, Words]
    complaint_words: Words
    answer_openers: tuple[str, ...]
    difficulties: Words
    complaint_yes: frozenset[str]
    complaint_no: frozenset[str]
    handoff_words: Words
    no_comment_parts: tuple[str, ...]  # longest first
    menu: frozenset[str]
    cancel_words: Words


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    data = yamlfile.read(DATA_FILE)
    intake = yamlfile.read(INTAKE_FILE)
    demand, complaint = data["demand"], data["complaint"]
    return Vocabulary(
        triggers=tuple(strip_punct(str(t).casefold()) for t in intake["triggers"]),
        demand_phrases=Words(demand["phrases"]),
        strong_requests=Words(demand["strong"]),
        weak_requests=Words(demand["weak"]),
        open_questions=Words(demand["open_questions"]),
        yes_no_questions=Words(demand["yes_no_questions"]),
        services={domain: Words(demand["services"][domain]) for domain in DOMAINS},
        complaint_words=Words(complaint["explicit"]),
        answer_openers=tuple(sorted((str(w).casefold() for w in complaint["answer_openers"]), key=len,
                                    reverse=True)),
        difficulties=Words(complaint["difficulties"]),
        complaint_yes=_whole(complaint["answer_yes"]),
        complaint_no=_whole(complaint["answer_no"]),
        handoff_words=Words(data["handoff"]["explicit"]),
        no_comment_parts=tuple(sorted(_whole(data["no_comment"]) - {""}, key=len, reverse=True)),
        menu=_whole(data["menu"]),
        cancel_words=Words(data["cancel_explicit"]),
    )


@dataclass(frozen=True, slots=True)
class Said:
    """One message in the two forms the vocabulary is matched against."""

    text: str  # normalised: Simplified, case-folded, half-width
    bare: str  # the same without spaces and punctuation

    @classmethod
    def of(cls, ctx: TurnContext) -> Said:
        text = ctx.nlu.normalized.text
        return cls(text, strip_punct(text))


# --- questions and demands -----------------------------------------------------------------------

def is_question(ctx: TurnContext) -> bool:
    """Put as a question: a question mark, or a question word ("吗", "怎么", "要不要", "how")."""
    said, words = Said.of(ctx), vocabulary()
    return "?" in said.text or words.open_questions.found(said) or words.yes_no_questions.found(said)


def service_domain(said: Said) -> str | None:
    """The one service domain the message names ("检定" → metrology), None for none or several."""
    named = [domain for domain, words in vocabulary().services.items() if words.found(said)]
    return named[0] if len(named) == 1 else None


def demand_domain(ctx: TurnContext) -> str | None:
    """The service a demand is about: the domain its words name, else the classifier's when sure."""
    named = service_domain(Said.of(ctx))
    if named is not None:
        return named
    nlu = ctx.nlu
    if nlu.act == "inquiry" and nlu.domain in DOMAINS and nlu.confidence >= DOMAIN_SURE:
        return nlu.domain
    return None


def is_demand(ctx: TurnContext) -> bool:
    """"Handle this for us", said any natural way: an intake trigger or a demand phrase
    ("想提交服务需求"); or a request verb about a service ("帮我们安排一下检定",
    "需要找家机构做检测", "I'd like to request a calibration"). A question about a service
    ("电子秤要不要检定", "检测报告找哪家机构出具？") is not one."""
    said, words = Said.of(ctx), vocabulary()
    if any(t in said.bare for t in words.triggers) or words.demand_phrases.found(said):
        return True
    about_service = service_domain(said) is not None or (ctx.nlu.act == "inquiry" and ctx.nlu.domain in DOMAINS)
    if not about_service or words.open_questions.found(said):
        return False
    if words.strong_requests.found(said):
        return True
    return words.weak_requests.found(said) and "?" not in said.text and not words.yes_no_questions.found(said)


def demand_remainder(text: str) -> str:
    """The opening message without the words that only say "I have a demand", so what is left
    describes it ("我要办理 检验检测" → "检验检测")."""
    remainder = text
    for phrase in (*vocabulary().triggers, *(p for p in vocabulary().demand_phrases.cjk)):
        remainder = remainder.replace(phrase, "")
    return remainder.strip(" ，,。.：:；;！!")


# --- complaints, handoffs, comments -------------------------------------------------------------

def _opens_like_an_answer(said: Said) -> bool:
    for opener in vocabulary().answer_openers:
        if said.text.startswith(opener):
            rest = said.text[len(opener):]
            # "是的都…", "好的，…"; a one-character or English opener only before a pause or
            # alone ("是，…", "ok, …"), since "好差" or "对你们很失望" open no answer
            needs_pause = len(opener) == 1 or opener.isascii()
            if not needs_pause or not rest or not rest[0].isalnum():
                return True
    return False


def complaint_verdict(ctx: TurnContext) -> Literal["file", "ask"] | None:
    """"file" when the user clearly complains: names it ("投诉") or the classifier is sure and
    the message is not an answer ("是的，…") or a reported difficulty ("电话打不通"); "ask"
    when the classifier says complaint but less surely; None when it is no complaint."""
    if ctx.nlu.act != "complaint":
        return None  # "怎么投诉超市卖假货" is a question for the referral, not a complaint about us
    said, words = Said.of(ctx), vocabulary()
    if words.complaint_words.found(said) and said.bare not in words.complaint_no:
        return "file"
    if ctx.nlu.confidence >= COMPLAINT_SURE and not _opens_like_an_answer(said) and not words.difficulties.found(said):
        return "file"
    return "ask"


def complaint_answer(ctx: TurnContext) -> Literal["yes", "no"] | None:
    """The answer to "您是要投诉吗？": yes, no, or something else (a new message)."""
    said, words = Said.of(ctx), vocabulary()
    if said.bare in words.complaint_no:
        return "no"
    if said.bare in words.complaint_yes:
        return "yes"
    return None


def handoff_wanted(ctx: TurnContext) -> bool:
    """A handoff the user clearly asks for: a word for a person ("人工", "客服"), or a sure
    classifier on a message that does not open like an answer ("可以，麻烦尽快" answers a
    commissioner; it asks for no one)."""
    if ctx.nlu.act != "handoff":
        return False
    said = Said.of(ctx)
    if vocabulary().handoff_words.found(said):
        return True
    return ctx.nlu.confidence >= HANDOFF_SURE and not _opens_like_an_answer(said)


def is_no_comment(ctx: TurnContext) -> bool:
    """"没有", "没了", "no", "好的谢谢": nothing to add after a rating -- the message is made
    only of such words."""
    rest, words = Said.of(ctx).bare, vocabulary().no_comment_parts
    while rest:
        part = next((w for w in words if rest.startswith(w)), None)
        if part is None:
            return False
        rest = rest[len(part):]
    return True


def new_request(ctx: TurnContext, kinds: Iterable[Request] = ALL_REQUESTS) -> Request | None:
    """The first of ``kinds`` the message clearly is, else None (an answer, a detail, a time).

    Cheap checks first; the knowledge base is searched only for an inquiry put as a question."""
    said, words, nlu = Said.of(ctx), vocabulary(), ctx.nlu
    for kind in kinds:
        if kind == "demand" and is_demand(ctx):
            return kind
        if kind == "progress" and (nlu.act == "progress_query" or find_case_numbers(ctx.message.text)):
            return kind
        if kind == "handoff" and handoff_wanted(ctx):
            return kind
        if kind == "complaint" and complaint_verdict(ctx) == "file":
            return kind
        if kind == "cancel" and nlu.act == "cancel" and words.cancel_words.found(said):
            return kind
        if kind == "menu" and said.bare in words.menu:
            return kind
        if kind == "question" and nlu.act == "inquiry" and is_question(ctx) and ctx.kb_search().outcome == "answer":
            return kind
    return None
