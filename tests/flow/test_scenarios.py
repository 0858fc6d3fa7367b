"""Conversation scenarios as data files (tests/flow/scenarios/*.yaml), run against the real
engine and database. Each step is one of:

    say: <text>          (user: <id>, default "ent")   the user writes; then
      kind: image|voice|file|location  (attachment: <ref>)  a message that is not text, as a
                         channel delivers it (text: its label, e.g. "[位置] 厦门市湖里区…")
      nlu: {act: ..., confidence: ..., domain: ...}  pin what the classifier makes of this text
                         (for rules that depend on its confidence, so a retrained model does not
                         change what the step tests)
      expect: [substrings that must appear in the bot's replies]
      expect_not: [substrings that must not appear]
      silent: true       the bot must not answer at all (a person is on the line)
    state: {flow: <name or null>, user: <id>}            the persisted conversation state
    set_state: {flow: <name>, data: {...}, user: <id>}   put the user in a flow (a pending
                         "您是不是想问" list) without depending on what the knowledge base says
    case: {op: accept|reply|transfer|resolve|reopen|end_live, number: ..., as: <handle>, ...}
      error: <substring>  the operation must be refused with this reason
    check_case: {number: ..., status: ..., owner: <handle>, events: [kinds that must be on the timeline],
                 description: <substring of the demand>, event_texts: [substrings of event texts]}
    outbox: {recipient: <handle, "management" or "any">, contains: <substring>, count: <n>}
    complaint_reply: {number: ..., text: ...}
    duty: {as: <handle>, on_duty: true|false}   a commissioner goes on or off duty
    advance: {hours: <n>} / {minutes: <n>} / {days: <n>}  move the clock
    jobs: true           run the periodic jobs once (escalation, reminders, auto-close)
    dispatch: true       run the outbox dispatcher once
    restart: true        stop the runtime and start a new one on the same database
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot.config import Settings
from bot.jobs import run_jobs_once
from bot.messages import InboundMessage
from bot.runtime import Runtime
from bot.services import cases, complaints, conversations, live, matching
from bot.services.conversations import DialogueState
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, ConversationState, Outbox
from intents.classifier import Nlu, NluResult
from tests.helpers.clock import Clock
from tests.helpers.runtime import start_runtime

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.yaml"))


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


class PinnedNlu:
    """The real classifier, except for texts a step pinned: there the given fields replace its
    verdict (``confidence`` also sets ``act_confidence``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.pins: dict[str, dict[str, Any]] = {}

    def parse(self, text: str) -> NluResult:
        result: NluResult = self.inner.parse(text)
        pin = self.pins.get(text)
        if pin is None:
            return result
        fields = dict(pin)
        if "confidence" in fields:
            fields.setdefault("act_confidence", fields["confidence"])
        if fields.get("act", result.act) != "inquiry":
            fields.setdefault("domain", None)
        return dataclasses.replace(result, **fields)


class Runner:
    def __init__(self, runtime: Runtime, settings: Settings, nlu: Nlu, knowledge: KnowledgeService,
                 clock: Clock) -> None:
        self.runtime, self.settings, self.nlu, self.knowledge, self.clock = runtime, settings, nlu, knowledge, clock
        self.transcript: list[str] = []
        self.pinned = PinnedNlu(nlu)
        runtime.dialogue.nlu = self.pinned

    def fail(self, message: str) -> None:
        pytest.fail(message + "\n--- conversation so far ---\n" + "\n".join(self.transcript[-30:]))

    async def say(self, step: dict[str, Any]) -> None:
        user = step.get("user", "ent")
        text = str(step["say"])
        if "nlu" in step:
            self.pinned.pins[text] = dict(step["nlu"])
        await self.runtime.dispatcher.run_once()  # commissioner messages become held for hand-over
        result = await self.runtime.dialogue.handle(InboundMessage(
            channel="cli", user_id=user, text=text, kind=step.get("kind", "text"), attachment=step.get("attachment")))
        replies = "\n".join(r.text for r in result.replies)
        self.transcript += [f"{user}> {text}", *(f"bot> {r.text}" for r in result.replies)]
        for needle in step.get("expect", []):
            if str(needle) not in replies:
                self.fail(f"expected {needle!r} in the reply to {text!r}")
        for needle in step.get("expect_not", []):
            if str(needle) in replies:
                self.fail(f"did not expect {needle!r} in the reply to {text!r}")
        if step.get("silent") and result.replies:
            self.fail(f"the bot answered {text!r} while it should stay silent: {replies}")

    async def state(self, step: dict[str, Any]) -> None:
        user = step.get("user", "ent")
        async with self.runtime.sessions() as session:
            identity = (await session.execute(select(ChannelIdentity).where(
                ChannelIdentity.channel == "cli", ChannelIdentity.external_id == user))).scalar_one()
            row = await session.get(ConversationState, identity.id)
        flow = row.flow if row else None
        if flow != step["flow"]:
            self.fail(f"state of {user}: expected flow {step['flow']!r}, got {flow!r}")

    async def set_state(self, step: dict[str, Any]) -> None:
        user = step.get("user", "ent")
        async with transaction(self.runtime.sessions) as session:
            identity = (await session.execute(select(ChannelIdentity).where(
                ChannelIdentity.channel == "cli", ChannelIdentity.external_id == user))).scalar_one()
            await conversations.save(session, identity.id, DialogueState(step["flow"], dict(step.get("data") or {})),
                                     self.clock())

    async def case(self, step: dict[str, Any]) -> None:
        op = step["op"]
        now = self.clock()
        try:
            async with transaction(self.runtime.sessions) as session:
                case = await cases.require_case(session, step["number"])
                actor = await cases.commissioner_for_action(session, case, step.get("as"))
                if op == "accept":
                    await cases.accept(session, case, actor, now)
                elif op == "reply":
                    await cases.reply(session, case, actor, step["text"], now)
                    await live.touch_for_case(session, case, now)
                elif op == "transfer":
                    target = await matching.find_commissioner(session, step["to"])
                    assert target is not None
                    await cases.transfer(session, case, actor, target, step.get("reason", ""), now)
                elif op == "resolve":
                    await cases.resolve(session, case, actor, step.get("summary", "已办结"), now,
                                        institution_id=step.get("institution"), expert_id=step.get("expert"))
                elif op == "reopen":
                    await cases.reopen(session, case, actor, step.get("reason", "企业要求"), now)
                elif op == "end_live":
                    current = await live.active_for_case(session, case)
                    assert current is not None, "no live session"
                    await live.end(session, current, cases.actor_of(actor), now, from_outside=True)
                else:
                    raise AssertionError(f"unknown op {op}")
        except cases.CaseError as exc:
            if "error" not in step:
                self.fail(f"{op} {step['number']} refused: {exc}")
            if step["error"] not in str(exc):
                self.fail(f"{op} refused with {exc!r}, expected {step['error']!r}")
            return
        if "error" in step:
            self.fail(f"{op} {step['number']} should have been refused ({step['error']})")

    async def check_case(self, step: dict[str, Any]) -> None:
        async with self.runtime.sessions() as session:
            case = await cases.require_case(session, step["number"])
            if "status" in step and case.status != step["status"]:
                self.fail(f"{case.number}: status {case.status}, expected {step['status']}")
            if "owner" in step:
                owner = case.owner.handle if case.owner else None
                if owner != step["owner"]:
                    self.fail(f"{case.number}: owner {owner}, expected {step['owner']}")
            if "assignee" in step:
                assignee = case.assignee.handle if case.assignee else None
                if assignee != step["assignee"]:
                    self.fail(f"{case.number}: assignee {assignee}, expected {step['assignee']}")
            kinds = [e.kind for e in case.events]
            for kind in step.get("events", []):
                if kind not in kinds:
                    self.fail(f"{case.number}: no {kind!r} on the timeline {kinds}")
            if "description" in step and str(step["description"]) not in case.description:
                self.fail(f"{case.number}: description {case.description!r} lacks {step['description']!r}")
            texts = [e.text or "" for e in case.events]
            for needle in step.get("event_texts", []):
                if not any(str(needle) in t for t in texts):
                    self.fail(f"{case.number}: no event text with {needle!r} on the timeline {texts}")

    async def outbox(self, step: dict[str, Any]) -> None:
        async with self.runtime.sessions() as session:
            query = select(Outbox).where(Outbox.channel == "console")
            if step["recipient"] != "any":
                query = query.where(Outbox.recipient == step["recipient"])
            rows = (await session.execute(query)).scalars().all()
        matching_rows = [r for r in rows if step.get("contains", "") in str(r.payload.get("text", ""))]
        expected = step.get("count")
        if (expected is None and not matching_rows) or (expected is not None and len(matching_rows) != expected):
            texts = [r.payload.get("text") for r in rows]
            self.fail(f"outbox for {step['recipient']}: {len(matching_rows)} rows with {step.get('contains')!r}, "
                      f"expected {expected if expected is not None else 'some'}; rows: {texts}")

    async def complaint_reply(self, step: dict[str, Any]) -> None:
        async with transaction(self.runtime.sessions) as session:
            await complaints.reply_complaint(session, step["number"], step["text"], "manager:test", self.clock())

    async def run(self, steps: list[dict[str, Any]]) -> None:
        for step in steps:
            if "say" in step:
                await self.say(step)
            elif "state" in step:
                await self.state({**step["state"], **({"user": step["user"]} if "user" in step else {})})
            elif "set_state" in step:
                await self.set_state(step["set_state"])
            elif "case" in step:
                await self.case({**step["case"], **{k: v for k, v in step.items() if k == "error"}})
            elif "check_case" in step:
                await self.check_case(step["check_case"])
            elif "outbox" in step:
                await self.outbox(step["outbox"])
            elif "complaint_reply" in step:
                await self.complaint_reply(step["complaint_reply"])
            elif "duty" in step:
                async with transaction(self.runtime.sessions) as session:
                    person = await matching.find_commissioner(session, step["duty"]["as"])
                    assert person is not None
                    person.on_duty = bool(step["duty"]["on_duty"])
            elif "advance" in step:
                self.clock.advance(**step["advance"])
            elif "jobs" in step:
                await run_jobs_once(self.runtime)
            elif "dispatch" in step:
                await self.runtime.dispatcher.run_once()
            elif "restart" in step:
                await self.runtime.close()
                self.runtime = await start_runtime(self.settings, self.nlu, self.knowledge, self.clock)
                self.runtime.dialogue.nlu = self.pinned
            else:
                raise AssertionError(f"unknown step {step}")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario(path: Path, flow_runtime: Runtime, settings: Settings, nlu: Nlu,
                        knowledge: KnowledgeService, clock: Clock) -> None:
    scenario = load(path)
    runner = Runner(flow_runtime, settings, nlu, knowledge, clock)
    try:
        await runner.run(scenario["steps"])
    finally:
        if runner.runtime is not flow_runtime:
            await runner.runtime.close()
