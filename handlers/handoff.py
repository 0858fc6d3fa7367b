"""Live handoff (转人工): connect to a person, then stay silent and relay until the person (or
the enterprise) ends the session or it idles out. The bot never talks over a human.

A handoff belongs to the enterprise's open case and goes to the person in charge of it first
(:func:`bot.services.live.start`). Without an open case, a request that says nothing about what
it is for ("转人工") gets one question first, and the answer is the new case's demand, so the
commissioner knows what the conversation is about before saying hello."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from bot.privacy import mask_name
from bot.services import cases, enterprises, live
from handlers import consent, guard, signals
from handlers.base import Match, Outcome, TurnContext
from handlers.knowledge import LAST_DOMAIN
from handlers.words import bare, words
from intents import yamlfile

END_WORDS = words("live_end")
TOPIC_FLOW = "handoff_topic"
DATA_FILE = Path(__file__).parent / "data" / "handoff.yaml"
_CANCEL = words("handoff_cancel")
# Clear requests of their own, typed where the topic was asked: handled as that, no handoff.
_NOT_A_TOPIC: tuple[signals.Request, ...] = ("demand", "progress", "complaint", "menu")


@lru_cache(maxsize=1)
def _topic_words() -> tuple[tuple[str, ...], int]:
    data = yamlfile.read(DATA_FILE)
    words = {bare(str(w)) for w in data["fillers"]} | set(signals.vocabulary().handoff_words.cjk)
    return tuple(sorted(words - {""}, key=len, reverse=True)), int(data["min_topic"])


def says_what_about(text: str) -> bool:
    """Whether a handoff request says what it is about ("转人工，CCC证书到期了怎么续"), beyond
    asking for a person ("转人工", "我要找人工客服")."""
    rest = bare(text)
    words, least = _topic_words()
    for word in words:
        rest = rest.replace(word, "")
    return len(rest) >= least


class HandoffHandler:
    name = "handoff"
    flows = frozenset({TOPIC_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        if ctx.state.flow == TOPIC_FLOW:
            if bare(ctx.message.text) in _CANCEL:
                return Match("topic_cancel")
            if ctx.message.kind == "text" and signals.new_request(ctx, _NOT_A_TOPIC) is not None:
                return Match("topic_dropped")  # "我要办理", "我的需求进度": that instead of a person
            return Match("topic" if ctx.message.kind == "text" else "topic_aside")
        # A handoff opens a case and pages a person: not on noise the classifier is unsure of.
        return Match("act") if signals.handoff_wanted(ctx) else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        if match.reason == "topic_cancel":
            ctx.state.clear()
            return Outcome((ctx.say("handoff_topic_cancelled"),))
        if match.reason == "topic_dropped":
            ctx.state.clear()
            return Outcome((), then_dispatch=True)
        if match.reason == "topic_aside":  # a photo instead of the line: answered, then asked again
            return Outcome((), then_dispatch=True, resume=(ctx.say("handoff_topic_ask"),))
        if match.reason == "topic":  # the line about what it is for: the demand of the new case
            held = ctx.state.data
            ctx.state.clear()
            topic = ctx.message.text.strip()
            if not says_what_about(topic):  # "转人工" again, "不知道": connect anyway
                topic = held.get("request") or topic
            domain = held.get("domain") or (ctx.nlu.domain if ctx.nlu.act == "inquiry" else None)
            match = Match("act", {"description": topic, "domain": domain})
        # Resumed by the contact gate (handlers/consent.py), the request and its domain are the held ones.
        domain = match.data.get("domain") or (
            ctx.nlu.domain if ctx.nlu.act == "inquiry" else ctx.state.data.get(LAST_DOMAIN))
        description = match.data.get("description") or ctx.message.text
        if "description" not in match.data and not says_what_about(description) \
                and not await self._has_open_case(ctx):
            ctx.state.enter(TOPIC_FLOW, request=description, domain=domain)
            return Outcome((ctx.say("handoff_topic_ask"),))
        gate = await consent.require_mobile(ctx, "handoff", text=description, domain=domain)
        if gate is not None:
            return gate
        refused = await guard.refused(ctx, "handoff")
        if refused is not None:
            return refused
        enterprise = await enterprises.enterprise_for(ctx.session, ctx.identity)
        started = await live.start(
            ctx.session, identity=ctx.identity, enterprise=enterprise, domain=domain,
            description=description, now=ctx.now, calendar=ctx.policy.calendar, policy=ctx.policy,
        )
        ctx.state.enter(live.LIVE_FLOW, session_id=started.session_id, case=started.case.number)
        owner = mask_name(started.commissioner.name) if started.commissioner else ""
        if started.on_duty_now:
            return Outcome((ctx.say("handoff_connected", owner=owner, number=started.case.number),))
        expect = started.expect_by.astimezone(ctx.policy.calendar.tz).strftime("%m月%d日 %H:%M")
        return Outcome((ctx.say("handoff_waiting", owner=owner, number=started.case.number, expect_by=expect),))

    @staticmethod
    async def _has_open_case(ctx: TurnContext) -> bool:
        enterprise_id = ctx.identity.enterprise_id
        return enterprise_id is not None and bool(await cases.open_cases_of_enterprise(ctx.session, enterprise_id))


class LiveHandler:
    """Owns the ``live`` flow: relays every message to the commissioner and replies nothing."""

    name = "live"
    flows = frozenset({live.LIVE_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        return Match("live") if ctx.state.flow == live.LIVE_FLOW else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        current = await live.active_session(ctx.session, ctx.identity.id)
        if current is None:  # ended elsewhere; answer normally
            ctx.state.clear()
            return Outcome((), then_dispatch=True)
        number = str(ctx.state.data.get("case", ""))
        if bare(ctx.message.text) in END_WORDS:
            outcome = await live.end(ctx.session, current, "enterprise", ctx.now, from_outside=False)
            ctx.state.clear()
            return Outcome((ctx.say("handoff_ended_by_user", outcome=outcome, number=number),))
        if ctx.now - current.last_activity_at > ctx.policy.live_idle:
            outcome = await live.end(ctx.session, current, "system:idle", ctx.now, from_outside=False)
            ctx.state.clear()
            return Outcome((ctx.say("handoff_idle_ended", outcome=outcome, number=number),), then_dispatch=True)
        await live.relay_from_enterprise(ctx.session, current, ctx.message.text, ctx.now)
        return Outcome(())
