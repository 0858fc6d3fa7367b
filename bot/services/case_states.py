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
