"""The relational model. One table per thing the standard names (enterprise, commissioner,
case and its timeline, rating, institution, expert, complaint) plus the plumbing a reliable bot
needs (channel identities, persisted conversation state, a de-duplicating message log, an outbox).

Portable by construction: only types that SQLite and PostgreSQL both support, JSON for small
lists, UTC timestamps through :class:`UTCDateTime`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.storage.types import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}
    if TYPE_CHECKING:
        # Every model here is a declarative table, so its __table__ is a Table (SQLAlchemy types it as
        # the wider FromClause, which insert_ignore/update and .c.<column> access cannot take).
        __table__: ClassVar[Table]


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Site(TimestampMixin, Base):
    """A service center, sub-center or station (服务中心 / 分中心 / 驿站)."""

    __tablename__ = "site"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # center | sub_center | station
    district: Mapped[str | None] = mapped_column(String(40))


class Commissioner(TimestampMixin, Base):
    """A service commissioner (服务专员): owns cases end to end."""

    __tablename__ = "commissioner"
    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(40), unique=True)  # login / CLI name
    name: Mapped[str] = mapped_column(String(80))
    mobile: Mapped[str | None] = mapped_column(String(32))
    domains: Mapped[list[Any]] = mapped_column(default=list)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id", ondelete="SET NULL"))
    on_duty: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_supervisor: Mapped[bool] = mapped_column(Boolean, default=False)  # of their site
    telegram_chat_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    wecom_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # One-time code linking a messenger account (Telegram) to this commissioner: only its
    # SHA-256 is stored, and it expires; a username is never trusted as proof of identity.
    link_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    link_code_expires_at: Mapped[datetime | None] = mapped_column()
    last_assigned_at: Mapped[datetime | None] = mapped_column()
    satisfaction_sum: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction_count: Mapped[int] = mapped_column(Integer, default=0)
    # The commissioners' library (migration 0011): the districts served beyond the site's own,
    # the most open cases matching gives them (None: no limit), and who last suspended or
    # reinstated them, when and why (``active`` is the suspension itself).
    districts: Mapped[list[Any] | None] = mapped_column(default=list)
    max_open_cases: Mapped[int | None] = mapped_column(Integer)
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None] = mapped_column()
    status_changed_by: Mapped[str | None] = mapped_column(String(80))

    site: Mapped[Site | None] = relationship(foreign_keys=[site_id])


class Enterprise(TimestampMixin, Base):
    """A service object (服务对象): the enterprise behind one or more chat identities."""

    __tablename__ = "enterprise"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18), index=True)
    credit_code_valid: Mapped[bool | None] = mapped_column(Boolean)
    contact_name: Mapped[str | None] = mapped_column(String(80))
    mobile: Mapped[str | None] = mapped_column(String(32))
    district: Mapped[str | None] = mapped_column(String(40))
    industry: Mapped[str | None] = mapped_column(String(80))
    chain: Mapped[str | None] = mapped_column(String(80))  # industry chain tag (质量链)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChannelIdentity(TimestampMixin, Base):
    """One user on one channel (WeChat openid, Telegram chat, web session, terminal user)."""

    __tablename__ = "channel_identity"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(128))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise.id", ondelete="SET NULL"))
    script: Mapped[str] = mapped_column(String(8), default="hans")  # last script the user wrote in
    language: Mapped[str] = mapped_column(String(8), default="zh")
    last_inbound_at: Mapped[datetime | None] = mapped_column()
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)

    enterprise: Mapped[Enterprise | None] = relationship()


class ConversationState(Base):
    """Where a multi-turn dialogue stands, persisted so it survives restarts and is shared by
    every worker (process memory would break both)."""

    __tablename__ = "conversation_state"
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("channel_identity.id", ondelete="CASCADE"), primary_key=True
    )
    flow: Mapped[str | None] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageLog(TimestampMixin, Base):
    """Every message in and out. The unique key on the channel's own message id is what makes
    a retried delivery a no-op instead of a second answer."""

    __tablename__ = "message_log"
    __table_args__ = (
        UniqueConstraint("identity_id", "direction", "channel_message_id"),
        Index("ix_message_log_identity_created", "identity_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identity.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    channel_message_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(20), default="text")  # text | event | image | ...
    text: Mapped[str] = mapped_column(Text, default="")
    act: Mapped[str | None] = mapped_column(String(20))
    domain: Mapped[str | None] = mapped_column(String(20))
    confidence: Mapped[float | None] = mapped_column()
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("message_log.id", ondelete="SET NULL"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("service_case.id", ondelete="SET NULL"))
    author: Mapped[str | None] = mapped_column(String(60))  # bot | commissioner:<handle> | system
    # Tap-choices of a bot reply, so a retried delivery replays the answer exactly as first sent.
    choices: Mapped[list[Any] | None] = mapped_column()


class CaseCounter(Base):
    """Last case (or complaint) number issued per series and year; incremented under a row lock
    so numbers stay unique and gap-free under concurrency."""

    __tablename__ = "case_counter"
    series: Mapped[str] = mapped_column(String(8), primary_key=True)  # QI | TS
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


UNSTAMPED_RESPONSE = "accepted_at IS NOT NULL AND first_response_seconds IS NULL"


class ServiceCase(TimestampMixin, Base):
    """A case (一项一档): one enterprise demand from intake to archive."""

    __tablename__ = "service_case"
    __table_args__ = (
        # The dashboard and the ledger select by period; the overdue lists by deadline.
        Index("ix_service_case_created_at", "created_at"),
        Index("ix_service_case_accepted_at", "accepted_at"),
        Index("ix_service_case_resolved_at", "resolved_at"),
        Index("ix_service_case_status_accept_due", "status", "accept_due_at"),
        Index("ix_service_case_status_resolve_due", "status", "resolve_due_at"),
        # The inbox and matching (migration 0011): open cases of a holder, new cases by age.
        Index("ix_service_case_status_created", "status", "created_at"),
        Index("ix_service_case_owner_status", "owner_id", "status"),
        Index("ix_service_case_assignee_status", "assignee_id", "status"),
        # ``stats.stamp_deadlines`` looks for accepted cases without a first response on every
        # dashboard and inbox: a partial index that is empty once they are stamped.
        Index("ix_service_case_response_unstamped", "id", postgresql_where=text(UNSTAMPED_RESPONSE),
              sqlite_where=text(UNSTAMPED_RESPONSE)),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id", ondelete="RESTRICT"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identity.id", ondelete="SET NULL"))
    domain: Mapped[str] = mapped_column(String(20), index=True)
    service_type: Mapped[str | None] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[str | None] = mapped_column(String(10))  # online | onsite
    district: Mapped[str | None] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("commissioner.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("commissioner.id", ondelete="SET NULL"))
    suggestions: Mapped[dict[str, Any]] = mapped_column(default=dict)  # matched institutions/experts
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    escalated_at: Mapped[datetime | None] = mapped_column()
    # Each resolve opens a new rating round (a reopened case is rated again).
    rating_round: Mapped[int] = mapped_column(Integer, default=0)
    rating_requested_at: Mapped[datetime | None] = mapped_column()
    rating_reminded_at: Mapped[datetime | None] = mapped_column()
    # The working-calendar deadlines (acceptance: the escalation hours; completion: working days)
    # and the first response, stamped once by ``bot.services.stats.stamp_deadlines`` so that the
    # on-time rates are plain SQL comparisons (working time cannot be counted in SQL).
    accept_due_at: Mapped[datetime | None] = mapped_column()
    resolve_due_at: Mapped[datetime | None] = mapped_column()
    first_response_seconds: Mapped[int | None] = mapped_column(Integer)

    enterprise: Mapped[Enterprise] = relationship()
    owner: Mapped[Commissioner | None] = relationship(foreign_keys=[owner_id])
    assignee: Mapped[Commissioner | None] = relationship(foreign_keys=[assignee_id])
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan"
    )


class CaseEvent(TimestampMixin, Base):
    """One line of a case's timeline."""

    __tablename__ = "case_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("service_case.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    case: Mapped[ServiceCase] = relationship(back_populates="events")


class CaseMaterial(TimestampMixin, Base):
    """A file or image an enterprise sent for its case (补充材料). The row is written when the
    message arrives (``status`` pending, ``ref`` the channel's reference such as
    ``wechat-media:<MediaId>``); the bytes follow when the channel has fetched them (``stored``),
    or the fetch gives up (``failed``: WeChat keeps temporary media three days). The bytes live
    in the database so every worker serves them and backups hold them."""

    __tablename__ = "case_material"
    __table_args__ = (Index("ix_case_material_case", "case_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("service_case.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # image | file
    channel: Mapped[str] = mapped_column(String(20))
    ref: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | stored | failed | erased
    filename: Mapped[str | None] = mapped_column(String(200))
    content_type: Mapped[str | None] = mapped_column(String(100))  # as sniffed from the bytes
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    stored_at: Mapped[datetime | None] = mapped_column()
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)


class Rating(TimestampMixin, Base):
    """A satisfaction rating of one resolution of a case (a reopened case is rated again)."""

    __tablename__ = "rating"
    __table_args__ = (UniqueConstraint("case_id", "round"), Index("ix_rating_created_at", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("service_case.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer, default=1)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    commissioner_id: Mapped[int | None] = mapped_column(ForeignKey("commissioner.id", ondelete="SET NULL"))


class RatingFollowup(TimestampMixin, Base):
    """The follow-up of a bad rating (差评整改, 好差评): call back → verified → fixed, registered
    for rectification with a deadline, explained, or appealed → reply to the enterprise → the
    enterprise rates the follow-up. Each step keeps who and when."""

    __tablename__ = "rating_followup"
    __table_args__ = (
        Index("ix_rating_followup_status_due", "status", "due_at"),
        Index("ix_rating_followup_created_at", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("rating.id", ondelete="CASCADE"), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("service_case.id", ondelete="CASCADE"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    # open → called → verified → handled → replied → rated
    status: Mapped[str] = mapped_column(String(12), default="open")
    due_at: Mapped[datetime] = mapped_column()  # the reply to the enterprise is due (working days)
    called_at: Mapped[datetime | None] = mapped_column()
    called_by: Mapped[str | None] = mapped_column(String(80))
    call_note: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None] = mapped_column()
    verified_by: Mapped[str | None] = mapped_column(String(80))
    verify_note: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(12))  # fixed | rectify | explained | appealed
    outcome_at: Mapped[datetime | None] = mapped_column()
    outcome_by: Mapped[str | None] = mapped_column(String(80))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    rectify_due_at: Mapped[datetime | None] = mapped_column()
    replied_at: Mapped[datetime | None] = mapped_column()
    replied_by: Mapped[str | None] = mapped_column(String(80))
    reply_text: Mapped[str | None] = mapped_column(Text)
    enterprise_score: Mapped[int | None] = mapped_column(Integer)
    enterprise_rated_at: Mapped[datetime | None] = mapped_column()

    case: Mapped[ServiceCase] = relationship()


class Institution(TimestampMixin, Base):
    """A technical institution (协同服务技术机构) in the resource library."""

    __tablename__ = "institution"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    domains: Mapped[list[Any]] = mapped_column(default=list)
    capabilities: Mapped[list[Any]] = mapped_column(default=list)
    qualifications: Mapped[list[Any]] = mapped_column(default=list)
    district: Mapped[str | None] = mapped_column(String(40))
    contact: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | suspended | retired
    # The exit mechanism (6.3, 6.5): why, when and by whom the status last changed.
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None] = mapped_column()
    status_changed_by: Mapped[str | None] = mapped_column(String(80))
    satisfaction_sum: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction_count: Mapped[int] = mapped_column(Integer, default=0)


class Expert(TimestampMixin, Base):
    """A technical expert (服务技术专家) in the expert library."""

    __tablename__ = "expert"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    title: Mapped[str | None] = mapped_column(String(80))
    domains: Mapped[list[Any]] = mapped_column(default=list)
    capabilities: Mapped[list[Any]] = mapped_column(default=list)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id", ondelete="SET NULL"))
    contact: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | suspended | retired
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None] = mapped_column()
    status_changed_by: Mapped[str | None] = mapped_column(String(80))
    satisfaction_sum: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction_count: Mapped[int] = mapped_column(Integer, default=0)


class Complaint(TimestampMixin, Base):
    """A complaint about the service (服务投诉), numbered and tracked to a reply."""

    __tablename__ = "complaint"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise.id", ondelete="SET NULL"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identity.id", ondelete="SET NULL"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("service_case.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | replied | closed
    reply: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None] = mapped_column()


class Outbox(TimestampMixin, Base):
    """A notification to deliver, written in the same transaction as the change it announces,
    so a crash or a notifier that is down delays it but never loses it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_identity_status", "identity_id", "status"),
        # The claim's look for an earlier row of the same recipient (order across workers).
        Index("ix_outbox_recipient", "channel", "recipient", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))  # webchat | cli | wechat | telegram | wecom | log
    recipient: Mapped[str] = mapped_column(String(128))
    # Set for messages to an enterprise: lets a "held" message be handed over at its next contact.
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identity.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # pending → sending (claimed by a dispatcher, being delivered) → sent; or → held (channel
    # cannot push now: delivered at the user's next message); or → pending again (a retry); or →
    # dead after the last retry (kept, logged, visible to operators).
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When a pending row is due; while ``sending``, the end of the claim's lease (then due again).
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column()
    dedup_key: Mapped[str | None] = mapped_column(String(128), unique=True)


class LiveSession(TimestampMixin, Base):
    """A live conversation between an enterprise and a commissioner (转人工). While it is
    active the bot stays silent and relays both ways."""

    __tablename__ = "live_session"
    __table_args__ = (Index("ix_live_session_identity_status", "identity_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identity.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("service_case.id", ondelete="CASCADE"))
    commissioner_id: Mapped[int | None] = mapped_column(ForeignKey("commissioner.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | ended
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    ended_by: Mapped[str | None] = mapped_column(String(60))


class CaseArchive(Base):
    """The archive file of a closed case (一项一档): a frozen snapshot, kept at least until
    ``retain_until`` (3 years by default, 6.10 of the standard)."""

    __tablename__ = "case_archive"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("service_case.id", ondelete="RESTRICT"), unique=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    archived_at: Mapped[datetime] = mapped_column(default=utcnow)
    retain_until: Mapped[datetime] = mapped_column()
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical JSON content


class KbGap(Base):
    """A question the knowledge base could not answer, counted by normalised text for curators."""

    __tablename__ = "kb_gap"
    id: Mapped[int] = mapped_column(primary_key=True)
    normalized: Mapped[str] = mapped_column(String(500), unique=True)
    sample: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    # Turned into an entry in the console: when, by whom, which entry. Asked again and still
    # unanswered, the gap counts again and these are cleared (the entry did not cover it).
    handled_at: Mapped[datetime | None] = mapped_column(default=None)
    handled_by: Mapped[str | None] = mapped_column(String(80), default=None)
    handled_entry: Mapped[str | None] = mapped_column(String(120), default=None)


class KbEdit(Base):
    """A knowledge entry as edited in the console, laid over the content files (``knowledge.overlay``):
    new, changed (same id as a file's entry) or retired. The database is the source of truth every
    worker reloads from; ``version`` is the ``kb_version`` counter at this entry's last change."""

    __tablename__ = "kb_edit"
    entry_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    state: Mapped[str] = mapped_column(String(12))  # published | retired
    content: Mapped[dict[str, Any]] = mapped_column()  # the YAML-shaped mapping of the entry
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(80))


class KbVersion(Base):
    """One row: the version of the console's knowledge edits. A publisher increments it in its
    transaction (the row lock orders concurrent publishers), so a worker that has seen version N
    has seen every edit committed up to N; workers compare it to reload only on a change."""

    __tablename__ = "kb_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class WeChatAccessToken(Base):
    """The one WeChat access token all workers share. Fetching a new token invalidates the old
    one, so a refresh happens under a lease (``lease_owner``/``lease_until``) claimed with a
    conditional UPDATE, and ``version`` tells a waiting worker that someone else refreshed."""

    __tablename__ = "wechat_access_token"
    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WeChatCsQuota(Base):
    """Customer-service messages pushed to one WeChat user since their last message: WeChat
    allows 5 per user message (error 45015 beyond that or after 48 h). The count belongs to the
    inbound time in ``window_start`` and starts again when the user writes again."""

    __tablename__ = "wechat_cs_quota"
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("channel_identity.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[datetime] = mapped_column()
    sent: Mapped[int] = mapped_column(Integer, default=0)


class WeChatReplyClaim(TimestampMixin, Base):
    """Who answers a WeChat message that was retried or answered late: ``push`` (the answer goes
    out through the customer-service API) or ``passive`` (a retry got it in its HTTP response).
    The primary key makes the choice atomic across workers, so the user never gets both."""

    __tablename__ = "wechat_reply_claim"
    key: Mapped[str] = mapped_column(String(260), primary_key=True)  # openid|message id
    how: Mapped[str] = mapped_column(String(8))  # push | passive


class PrivacyConsent(TimestampMixin, Base):
    """Proof that a person saw the privacy notice and agreed before the bot collected their
    first personal field (PIPL arts. 13-14, 17): who, when, on which channel, which version of
    the notice, and how they agreed. Kept after an erasure (with the identity link cut) because
    it is the record that the processing was lawful."""

    __tablename__ = "privacy_consent"
    __table_args__ = (Index("ix_privacy_consent_identity", "identity_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identity.id", ondelete="SET NULL"))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(20))
    notice_version: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20))  # intake | handoff | complaint
    # "provided": the person gave the field right after the notice (an affirmative act, GB/T
    # 35273-2020 5.4); "agreed": the person answered 同意.
    method: Mapped[str] = mapped_column(String(12))
    withdrawn_at: Mapped[datetime | None] = mapped_column()


class PrivacyRequest(TimestampMixin, Base):
    """The audit trail of a person's request about their data (export or erasure): who on the
    staff answered it, when, for which enterprise, and what was done."""

    __tablename__ = "privacy_request"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # export | erase
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(String(200))  # how the person was found, masked
    actor: Mapped[str] = mapped_column(String(80))  # the staff member (--as) or the OS user
    reason: Mapped[str] = mapped_column(Text, default="")  # e.g. the ticket or letter it answers
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)  # counts of what was exported or erased


class LimitRefusal(Base):
    """How often each abuse limit refused something, per day and channel: the counter operators
    read (``qibot limits``), summed over every worker."""

    __tablename__ = "limit_refusal"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    limit: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClusterLease(Base):
    """A named lease held by one process until ``expires_at``: what makes a periodic job run
    once per interval across every worker (``bot.jobs``) on SQLite and PostgreSQL alike,
    without making any process special. A holder that dies simply lets it run out."""

    __tablename__ = "cluster_lease"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column()
