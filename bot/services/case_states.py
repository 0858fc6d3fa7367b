"""The case vocabulary (states, service modes, complaint states) without the weight of the service layer, so the
command line can offer it before importing the database stack."""

from __future__ import annotations

STATUS_ZH = {
    "new": "待受理",
    "accepted": "办理中",
    "resolved": "已办结待评价",
    "closed": "已完结",
    "cancelled": "已撤回",
}
OPEN_STATUSES = ("new", "accepted")
MODE_ZH = {"online": "线上服务", "onsite": "上门服务"}
COMPLAINT_STATUS_ZH = {"open": "处理中", "replied": "已答复", "closed": "已办结"}
EVENT_ZH = {
    "created": "提交", "assigned": "指派", "unassigned": "待指派", "accepted": "受理", "replied": "回复企业",
    "transferred": "转交", "resolved": "办结", "reopened": "重新打开", "escalated": "超时上报",
    "cancelled": "撤回", "rated": "评价", "live_started": "转人工", "live_message": "企业消息",
    "live_ended": "结束人工", "low_rating_followup": "低分回访", "closed": "归档",
    "attachment": "补充材料", "enterprise_message": "企业留言", "note": "内部备注",
    "followup_called": "差评回访", "followup_verified": "差评核实", "followup_handled": "差评处理",
    "followup_replied": "差评答复", "followup_rated": "回访评价",
}


def event_name(kind: str) -> str:
    """A timeline event's Chinese name as staff read it (the code itself when it has none)."""
    return EVENT_ZH.get(kind, kind)
