"""Satisfaction ratings: "5", "五星", "非常满意" after a resolve; an optional comment follows."""

from __future__ import annotations

from bot.services import ratings
from handlers.base import Match, Outcome, TurnContext
from handlers.words import bare
from intents.extract import extract_rating

COMMENT_FLOW = "rating_comment"
NO_COMMENT = frozenset({"没有", "无", "没", "不用", "不用了", "没了", "没有了", "暂无", "no", "nothing"})


class RatingHandler:
    name = "rating"
    flows = frozenset({COMMENT_FLOW})

    def matches(self, ctx: TurnContext) -> Match | None:
        if ctx.state.flow == COMMENT_FLOW:
            return Match("comment")
        score = extract_rating(ctx.message.text)
        if score is not None and ctx.nlu.act in ("rating", "thanks_bye", "inquiry"):
            return Match("score", {"score": score})
        if ctx.nlu.act == "rating" and score is None:
            return Match("unscored")
        return None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        if match.reason == "comment":
            rating_id = ctx.state.data.get("rating_id")
            ctx.state.clear()
            if bare(ctx.message.text) not in NO_COMMENT and rating_id:
                await ratings.add_comment(ctx.session, int(rating_id), ctx.message.text.strip(), ctx.now)
            return Outcome((ctx.say("rating_comment_thanks"),))
        case = await ratings.awaiting_rating(ctx.session, ctx.identity.enterprise_id)
        if case is None:
            return Outcome((ctx.say("rating_nothing_pending"),))
        if match.reason == "unscored":
            return Outcome((ctx.say("rating_ask_score", number=case.number, choices=("5", "4", "3", "2", "1")),))
        score = int(match.data["score"])
        rating = await ratings.record_rating(ctx.session, case, score, ctx.now, ctx.policy.retention_years)
        # A rating that already says more than the score ("4分，响应很快") keeps that as the comment.
        has_comment = len(bare(ctx.message.text)) > 6
        if has_comment:
            await ratings.add_comment(ctx.session, rating.id, ctx.message.text.strip(), ctx.now)
        else:
            ctx.state.enter(COMMENT_FLOW, rating_id=rating.id)
        key = "rating_low_ack" if score <= ratings.LOW_RATING else "rating_thanks"
        return Outcome((ctx.say(key, number=case.number, score=score, ask_comment=not has_comment),))
