"""One-time notifications fitted to the demand: general lines always, the lines of the demand's
sub-type only when they apply, and the complete list when the demand is too vague to tell."""

from __future__ import annotations

import pytest

from bot.services import notices
from bot.services.notices import parse_service_types, service_types
from intents.labels import DOMAINS
from tests.helpers.chat import Chat

PREPACKAGED = "定量包装商品"


def materials(domain: str, demand: str) -> str:
    return "\n".join(notices.notice_for(domain, demand)["materials"])


def test_a_fuel_dispenser_gets_the_mandatory_lines_not_the_prepackaged_line() -> None:
    notice = notices.notice_for("metrology", "加油站的3台加油机要做强制检定")
    text = "\n".join(notice["materials"])
    assert PREPACKAGED not in text
    assert "强检登记备案记录" in text
    assert "营业执照" in text and "计量器具清单" in text
    assert "校准点" not in text
    assert "强制检定不收取检定费" in notice["fees"]


def test_prepackaged_goods_get_the_label_line() -> None:
    text = materials("metrology", "我们的瓶装饮料净含量要检查")
    assert PREPACKAGED in text
    assert "强检登记备案记录" not in text


def test_a_new_instrument_gets_the_certificate_and_type_approval_line() -> None:
    text = materials("metrology", "新买的电子秤要检定")
    assert "产品合格证" in text and "型式批准标志和编号" in text
    assert "强检登记备案记录" in text


def test_the_service_mode_given_at_intake_selects_the_on_site_line() -> None:
    assert "现场联系人" in materials("metrology", "压力表到期需要检定 上门服务")
    assert "现场联系人" not in materials("metrology", "压力表到期需要检定 线上服务")


def test_a_trademark_demand_lists_the_licence_requirement_and_foreign_marks() -> None:
    notice = notices.notice_for("ip", "想注册一个英文商标")
    text = "\n".join(notice["materials"])
    assert "个体工商户营业执照" in text and "仅凭身份证不能申请商标" in text
    assert "中文翻译" in text
    assert "技术交底" not in text and "六面视图" not in text
    assert "肖像" not in text


def test_a_portrait_mark_needs_the_portrait_authorisation() -> None:
    assert "肖像权人的书面授权" in materials("ip", "商标想用我爷爷的头像")


def test_a_design_patent_gets_six_views_brief_description_and_fee_reduction() -> None:
    notice = notices.notice_for("ip", "外观设计专利申请")
    text = "\n".join(notice["materials"])
    assert "六面视图" in text and "简要说明" in text
    assert "费减" in text
    assert "个体工商户营业执照" not in text
    assert "费用减缴" in notice["fees"]


def test_ccc_lists_nameplate_manual_drawings_oem_and_the_uniform_fees() -> None:
    notice = notices.notice_for("certification", "电热水壶要办3C认证")
    text = "\n".join(notice["materials"])
    for item in ("铭牌", "说明书", "电路图", "结构图", "OEM/ODM"):
        assert item in text
    assert "国家统一的收费标准" in notice["fees"]
    assert "内部审核" not in text


def test_a_management_system_demand_gets_licences_and_three_months_of_records() -> None:
    notice = notices.notice_for("certification", "申请ISO9001认证")
    text = "\n".join(notice["materials"])
    assert "行政许可" in text and "3个月" in text and "管理评审" in text
    assert "OEM/ODM" not in text
    assert "国家统一的收费标准" not in notice["fees"]


def test_time_honored_brand_lines_follow_the_2023_measures() -> None:
    text = materials("branding", "我们想申报中华老字号")
    for item in ("品牌创立时间", "注册商标的权属", "连续经营30年", "近5年经营"):
        assert item in text


def test_traditional_and_full_width_demands_match_the_same_keywords() -> None:
    text = materials("testing", "產品出口歐盟要做ＣＥ測試")
    assert "目标市场" in text


def test_an_ascii_keyword_matches_only_as_a_token() -> None:
    # "ce" inside "certificate" is not the CE mark; "9001" inside "ISO9001" is the standard.
    text = materials("testing", "抽检不合格, the certificate is wrong")
    assert "抽查结果通知书" in text and "目标市场" not in text
    assert "3个月" in materials("certification", "ISO9001")


def test_a_vague_demand_gets_the_complete_list() -> None:
    full = [line.text for line in service_types()["metrology"].materials]
    assert notices.notice_for("metrology", "计量服务")["materials"] == full
    assert notices.notice_for("metrology", "")["materials"] == full


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_domain_yields_a_non_empty_notice(domain: str) -> None:
    for demand in ("", "我要办理", "需要帮忙"):
        notice = notices.notice_for(domain, demand)
        assert notice["name"] and notice["typical_time"] and notice["fees"]
        assert notice["materials"] and all(isinstance(m, str) and m for m in notice["materials"])


def test_the_data_is_validated() -> None:
    base = {d: {"name": "n", "typical_time": "t", "materials": ["m"], "fees": ["f"]} for d in DOMAINS}
    parse_service_types(base)
    with pytest.raises(ValueError, match="general line"):
        parse_service_types({**base, "ip": {**base["ip"], "materials": [{"text": "x", "keywords": ["k"]}]}})
    with pytest.raises(ValueError, match="sub-types declared"):
        parse_service_types({**base, "ip": {**base["ip"], "materials": ["m", {"text": "x", "subtypes": ["nope"]}]}})
    missing = dict(base)
    del missing["quality"]
    with pytest.raises(ValueError, match="quality"):
        parse_service_types(missing)


async def test_the_submitted_demand_gets_its_fitted_notice(flow_runtime) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(flow_runtime, user="station")
    replies: list[str] = []
    for line in ["我要办理 加油站有3台加油机需要强制检定", "厦门示例加油站有限公司", "91110000802100433B", "林站长",
                 "13812345678", "湖里", "2", "确认"]:
        replies = await chat.say(line)
    notice = replies[0]
    assert "一次性告知" in notice and "强检登记备案记录" in notice
    assert PREPACKAGED not in notice
    assert "强制检定不收取检定费" in notice
