"""Label ids of the NLU, fixed by ``shared/docs/domain.md``.

They are the contract between the classifier, the training files, the dialogue handlers and
the ``qibot nlu`` CLI, so they live in one small module with no dependencies.
"""

from __future__ import annotations

from typing import Final

#: Dialogue acts. Only ``inquiry`` carries a domain.
ACTS: Final[tuple[str, ...]] = (
    "inquiry",
    "greeting",
    "thanks_bye",
    "help",
    "progress_query",
    "handoff",
    "complaint",
    "rating",
    "cancel",
)

INQUIRY: Final = "inquiry"

#: The seven service domains of the platform (section 5 of the local standard).
DOMAINS: Final[tuple[str, ...]] = (
    "metrology",
    "standards",
    "testing",
    "certification",
    "quality",
    "ip",
    "branding",
)

#: What the platform does not serve; an inquiry may carry it instead of a service domain.
OUT_OF_SCOPE: Final = "out_of_scope"

#: Every value ``NluResult.domain`` may take when the act is ``inquiry``.
INQUIRY_DOMAINS: Final[tuple[str, ...]] = (*DOMAINS, OUT_OF_SCOPE)

DOMAIN_NAMES_ZH: Final[dict[str, str]] = {
    "metrology": "计量",
    "standards": "标准化",
    "testing": "检验检测",
    "certification": "认证认可",
    "quality": "质量管理",
    "ip": "知识产权",
    "branding": "品牌建设",
    "out_of_scope": "非平台服务范围",
}

ACT_NAMES_ZH: Final[dict[str, str]] = {
    "inquiry": "咨询/需求",
    "greeting": "问候",
    "thanks_bye": "致谢/告别",
    "help": "帮助",
    "progress_query": "进度查询",
    "handoff": "转人工",
    "complaint": "投诉",
    "rating": "评价",
    "cancel": "撤销",
}
