"""Rejection reasons in words: each stable rule code as one sentence per language."""

from __future__ import annotations

from permits_notify.domain.messages import Language

REASONS: dict[str, dict[Language, str]] = {
    "residence_too_short": {
        "zh-Hant": "您在濟南居住未滿半年。",
        "zh-Hans": "您在济南居住未满半年。",
        "en": "You have not yet lived in Jinan for at least six months.",
    },
    "residence_not_in_jinan": {
        "zh-Hant": "登記的居住地址不在濟南市。",
        "zh-Hans": "登记的居住地址不在济南市。",
        "en": "The registered residence address is not in Jinan.",
    },
    "no_basis": {
        "zh-Hant": "未能證明合法穩定就業、合法穩定住所或連續就讀其中一項。",
        "zh-Hans": "未能证明合法稳定就业、合法稳定住所或连续就读其中一项。",
        "en": "No proof of legal stable employment, legal stable residence or continuous study.",
    },
    "basis_evidence_missing": {
        "zh-Hant": "申請條件缺少證明材料。",
        "zh-Hans": "申请条件缺少证明材料。",
        "en": "Evidence for the basis of your application is missing.",
    },
    "guardian_required": {
        "zh-Hant": "未滿十六周歲的申請人須由監護人代為申請。",
        "zh-Hans": "未满十六周岁的申请人须由监护人代为申请。",
        "en": "An applicant under 16 must apply through a guardian.",
    },
    "permit_number_invalid": {
        "zh-Hant": "往來內地通行證號碼無效。",
        "zh-Hans": "往来内地通行证号码无效。",
        "en": "The mainland travel permit number is not valid.",
    },
    "region_mismatch": {
        "zh-Hant": "通行證號碼與申請人所屬地區不符。",
        "zh-Hans": "通行证号码与申请人所属地区不符。",
        "en": "The travel permit number does not match your region.",
    },
    "biometrics_missing": {
        "zh-Hant": "未採集相片或指紋。",
        "zh-Hans": "未采集相片或指纹。",
        "en": "Your photo or fingerprints were not captured.",
    },
    "fingerprint_waiver_invalid": {
        "zh-Hant": "免採指紋的理由不符合規定。",
        "zh-Hans": "免采指纹的理由不符合规定。",
        "en": "The reason given for not taking fingerprints is not accepted.",
    },
    "unknown_acceptance_point": {
        "zh-Hant": "受理點不存在。",
        "zh-Hans": "受理点不存在。",
        "en": "The acceptance point is not known.",
    },
    "duplicate_open_application": {
        "zh-Hant": "您已有一宗未完成的申請或一張有效的居住證。",
        "zh-Hans": "您已有一宗未完成的申请或一张有效的居住证。",
        "en": "You already have an open application or a valid residence permit.",
    },
    "card_number_required": {
        "zh-Hant": "換領或補領須提供原居住證號碼。",
        "zh-Hans": "换领或补领须提供原居住证号码。",
        "en": "A renewal or reissue needs the number of your current card.",
    },
    "card_number_invalid": {
        "zh-Hant": "居住證號碼無效。",
        "zh-Hans": "居住证号码无效。",
        "en": "The residence permit number is not valid.",
    },
    "card_not_found": {
        "zh-Hant": "查無此居住證。",
        "zh-Hans": "查无此居住证。",
        "en": "No residence permit with this number was found.",
    },
    "card_not_holders": {
        "zh-Hant": "該居住證不屬於申請人。",
        "zh-Hans": "该居住证不属于申请人。",
        "en": "The residence permit does not belong to the applicant.",
    },
    "card_not_replaceable": {
        "zh-Hant": "該居住證目前不能換領或補領。",
        "zh-Hans": "该居住证目前不能换领或补领。",
        "en": "This residence permit cannot be renewed or reissued now.",
    },
    "renewal_reason_required": {
        "zh-Hant": "換領須說明理由。",
        "zh-Hans": "换领须说明理由。",
        "en": "A renewal needs a reason.",
    },
    "birth_date_in_future": {
        "zh-Hant": "出生日期有誤。",
        "zh-Hans": "出生日期有误。",
        "en": "The date of birth is not valid.",
    },
}

_GENERIC: dict[Language, str] = {
    "zh-Hant": "申請未符合辦理條件（代碼：{code}）。",
    "zh-Hans": "申请未符合办理条件（代码：{code}）。",
    "en": "The application does not meet the requirements (code: {code}).",
}


def reason_sentence(code: str, language: Language) -> str:
    """The reason for a rule code, or a generic sentence naming the code when it is unknown."""
    known = REASONS.get(code)
    if known is not None:
        return known[language]
    return _GENERIC[language].format(code=code)
