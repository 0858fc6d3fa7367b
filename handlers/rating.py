"""Satisfaction ratings: "5", "五星", "非常满意" after a resolve; an optional comment follows.

The comment is optional, so the question that asks for it must never swallow what the user
does next: a progress query, a question, a demand or a handoff typed there is handled as that
(and ends the wait for a comment); "没有", "没了", "no" end it without recording anything.
"""

from __future__ import annotations

from bot.services import followups, ratings
from handlers import signals
from handlers.base import Match, Outcome, TurnContext
from handlers.words import bare
from intents.extract import extract_rating

COMMENT_FLOW = "rating_comment"
# What is not a comment, typed where a comment is awaited. A complaint is not among them: after
# a low rating, "等了三天才回复" is exactly the comment asked for.
INTERRUPTIONS: tuple[signals.Request, ...] = ("demand", "progress", "handoff", "question", "menu")


class RatingHandler:
    name = "rating"
    flows = frozenset({COMMENT_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        if ctx.state.flow == COMMENT_FLOW:
            if signals.is_no_comment(ctx):
                return Match("no_comment")
            if signals.new_request(ctx, INTERRUPTIONS) is not None:
                return Match("interrupted")
            return Match("comment")
        score = extract_rating(ctx.message.text)
        if score is not None and ctx.nlu.act in ("rating", "thanks_bye", "inquiry"):
            return Match("score", {"score": score})
        if ctx.nlu.act == "rating" and score is None:
            return Match("unscored")
        return None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        if match.reason in ("no_comment", "interrupted"):
            ctx.state.clear()
            if match.reason == "no_comment":
                return Outcome((ctx.say("rating_comment_none"),))
            return Outcome((), then_dispatch=True)  # the new request, answered by its handler
        if match.reason == "comment":
            rating_id = ctx.state.data.get("rating_id")
            ctx.state.clear()
            if rating_id:
                await ratings.add_comment(ctx.session, int(rating_id), ctx.message.text.strip(), ctx.now)
            return Outcome((ctx.say("rating_comment_thanks"),))
        case = await ratings.awaiting_rating(ctx.session, ctx.identity.enterprise_id)
        if case is None:
            # 好差评: after the reply to a bad rating, the enterprise rates how it was handled.
            followup = await followups.awaiting_enterprise_rating(ctx.session, ctx.identity.enterprise_id)
            if followup is not None and match.reason == "score":
                score = int(match.data["score"])
                await followups.record_enterprise_rating(ctx.session, followup, score, ctx.now)
                return Outcome((ctx.say("followup_rated", number=followup.case.number,
                                        level=followups.scale().level(score)),))
            return Outcome((ctx.say("rating_nothing_pending"),))
        if match.reason == "unscored":
            return Outcome((ctx.say("rating_ask_score", number=case.number, choices=("5", "4", "3", "2", "1")),))
        score = int(match.data["score"])
        rating = await ratings.record_rating(ctx.session, case, score, ctx.now, ctx.policy.retention_years,
                                             policy=ctx.policy)
        # A rating that already says more than the score ("4分，响应很快") keeps that as the comment.
        has_comment = len(bare(ctx.message.text)) > 6
        if has_comment:
            await ratings.add_comment(ctx.session, rating.id, ctx.message.text.strip(), ctx.now)
        else:
            ctx.state.enter(COMMENT_FLOW, rating_id=rating.id)
        key = "rating_low_ack" if score <= ratings.LOW_RATING else "rating_thanks"
        return Outcome((ctx.say(key, number=case.number, score=score, ask_comment=not has_comment),))
