"""Error classes of the providers' codes: retry, wait for a per-number window, or fail at once.

Each entry: code → (outcome, provider_side, Chinese explanation for operations). Codes missing
from the tables are classified by their prefix (`classify_aliyun` / `classify_tencent`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.notify.providers.base import Outcome

BEIJING = ZoneInfo("Asia/Shanghai")

THROTTLE_RETRY_AFTER = 1.0  # seconds; the dispatcher's backoff adds jitter on top


@dataclass(frozen=True)
class Classified:
    outcome: Outcome
    provider_side: bool
    message: str
    retry_after: float | None = None


def seconds_to_beijing_midnight(now: datetime | None = None) -> float:
    """Daily limits reset at midnight Beijing time (自然日)."""
    now = (now or datetime.now(BEIJING)).astimezone(BEIJING)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - now).total_seconds())


R, W, P = Outcome.RETRY, Outcome.WAIT, Outcome.PERMANENT

# --- Aliyun Dysmsapi 2017-05-25 -------------------------------------------------------------

ALIYUN_CODES: dict[str, tuple[Outcome, bool, str]] = {
    # transient: retry (provider-side faults also start a failover cool-down)
    "Throttling.User": (R, False, "阿里云：请求过于频繁（用户级流控），稍后重试"),
    "Throttling": (R, False, "阿里云：请求过于频繁（流控），稍后重试"),
    "Throttling.Api": (R, False, "阿里云：接口调用频率超限，稍后重试"),
    "isp.SYSTEM_ERROR": (R, True, "阿里云：短信平台系统错误，稍后重试"),
    "isp.GATEWAY_ERROR": (R, True, "阿里云：短信网关错误，稍后重试"),
    "isp.GATEWAY_TIMEOUT": (R, True, "阿里云：短信网关超时，稍后重试"),
    "InternalError": (R, True, "阿里云：服务内部错误，稍后重试"),
    "ServiceUnavailable": (R, True, "阿里云：服务暂不可用，稍后重试"),
    # our account/credentials: this provider cannot send now, another one may
    "InvalidAccessKeyId.NotFound": (R, True, "阿里云：AccessKeyId 不存在，请检查配置"),
    "InvalidAccessKeyId.Inactive": (R, True, "阿里云：AccessKeyId 已停用，请检查配置"),
    "SignatureDoesNotMatch": (R, True, "阿里云：请求签名不匹配，请检查 AccessKeySecret"),
    "IncompleteSignature": (R, True, "阿里云：请求签名不完整"),
    "isp.RAM_PERMISSION_DENY": (R, True, "阿里云：RAM 权限不足（需 AliyunDysmsFullAccess）"),
    "isv.ACCOUNT_NOT_EXISTS": (R, True, "阿里云：账户不存在，请检查 AccessKey"),
    "isv.ACCOUNT_ABNORMAL": (R, True, "阿里云：账户异常"),
    "isv.PRODUCT_UN_SUBSCRIPT": (R, True, "阿里云：账号未开通短信服务"),
    "isv.PRODUCT_UNSUBSCRIBE": (R, True, "阿里云：产品未开通"),
    "isv.DAY_LIMIT_CONTROL": (R, True, "阿里云：触发控制台设置的日发送量限额"),
    "isv.MONTH_LIMIT_CONTROL": (R, True, "阿里云：触发控制台设置的月发送量限额"),
    "isv.DENY_IP_RANGE": (R, True, "阿里云：源 IP 所在地区被禁用"),
    # per-number flow control: wait for the window, not an error
    "isv.BUSINESS_LIMIT_CONTROL": (W, False, "阿里云：触发号码级流控（同一号码发送频率上限）"),
    # permanent: fail at once
    "isv.MOBILE_NUMBER_ILLEGAL": (P, False, "阿里云：手机号码格式错误（非法号码）"),
    "isv.MOBILE_COUNT_OVER_LIMIT": (P, False, "阿里云：手机号码数量超过上限"),
    "isv.SMS_TEMPLATE_ILLEGAL": (P, False, "阿里云：短信模板不存在或未审核通过"),
    "isv.SMS_SIGNATURE_ILLEGAL": (P, False, "阿里云：短信签名不存在或未审核通过"),
    "isv.SMS_SIGN_ILLEGAL": (P, False, "阿里云：签名禁止使用"),
    "isv.SIGN_STATE_ILLEGAL": (P, False, "阿里云：签名状态不可用"),
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": (P, False, "阿里云：签名和模板类型不一致"),
    "isv.TEMPLATE_MISSING_PARAMETERS": (P, False, "阿里云：模板变量缺少对应参数值"),
    "isv.TEMPLATE_PARAMS_ILLEGAL": (P, False, "阿里云：模板变量值不符合规范"),
    "isv.INVALID_JSON_PARAM": (P, False, "阿里云：模板参数不是合法的 JSON"),
    "isv.INVALID_PARAMETERS": (P, False, "阿里云：参数格式不正确"),
    "isv.PARAM_LENGTH_LIMIT": (P, False, "阿里云：参数超出长度限制"),
    "isv.PARAM_NOT_SUPPORT_URL": (P, False, "阿里云：模板变量中不支持链接"),
    "isv.SMS_CONTENT_ILLEGAL": (P, False, "阿里云：短信内容包含禁止发送的内容"),
    "isv.AMOUNT_NOT_ENOUGH": (P, False, "阿里云：账户余额不足"),
    "isv.OUT_OF_SERVICE": (P, False, "阿里云：业务停机（余额不足）"),
    "isv.BLACK_KEY_CONTROL_LIMIT": (P, False, "阿里云：内容命中黑名单关键字"),
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": (P, False, "阿里云：国际模板不支持发送境内号码"),
    "isv.EXTEND_CODE_ERROR": (P, False, "阿里云：扩展码使用错误"),
}

_ALIYUN_WINDOW = re.compile(r"(分钟|小时|天)级流控")
_ALIYUN_WINDOW_SECONDS = {"分钟": 60.0, "小时": 3600.0}


def aliyun_limit_wait(message: str | None, now: datetime | None = None) -> float:
    """`isv.BUSINESS_LIMIT_CONTROL` says which window was hit ("触发分钟级流控Permits:1",
    "触发小时级流控Permits:5", "触发天级流控Permits:10"): wait for that window to pass."""
    match = _ALIYUN_WINDOW.search(message or "")
    if match is None:
        return 60.0
    unit = match.group(1)
    if unit == "天":
        return seconds_to_beijing_midnight(now)
    return _ALIYUN_WINDOW_SECONDS[unit]


def classify_aliyun(code: str, message: str | None = None) -> Classified:
    entry = ALIYUN_CODES.get(code)
    detail = f"（{code}：{message}）" if message else f"（{code}）"
    if entry is None:
        if code.startswith(("isp.", "InternalError", "ServiceUnavailable")):
            entry = (R, True, "阿里云：平台错误，稍后重试")
        elif code.startswith("Throttling"):
            entry = (R, False, "阿里云：请求过于频繁，稍后重试")
        else:
            entry = (P, False, "阿里云：发送失败")
    outcome, provider_side, text = entry
    retry_after: float | None = None
    if outcome is W:
        retry_after = aliyun_limit_wait(message)
    elif outcome is R and not provider_side:
        retry_after = THROTTLE_RETRY_AFTER
    return Classified(outcome, provider_side, text + detail, retry_after)


# --- Tencent Cloud SMS 2021-01-11 -----------------------------------------------------------

TENCENT_CODES: dict[str, tuple[Outcome, bool, str]] = {
    "RequestLimitExceeded": (R, False, "腾讯云：请求频率超限，稍后重试"),
    "RequestLimitExceeded.GlobalRegionUinLimitExceeded": (R, False, "腾讯云：请求频率超限"),
    "RequestLimitExceeded.UinLimitExceeded": (R, False, "腾讯云：账号请求频率超限"),
    "LimitExceeded.DeliveryFrequencyLimit": (R, False, "腾讯云：命中频率限制策略，稍后重试"),
    "InternalError": (R, True, "腾讯云：内部错误，稍后重试"),
    "InternalError.Timeout": (R, True, "腾讯云：请求下发短信超时，稍后重试"),
    "InternalError.SendAndRecvFail": (R, True, "腾讯云：接口超时或收发包超时，稍后重试"),
    "InternalError.RequestTimeException": (R, True, "腾讯云：请求时间与服务器时间相差过大"),
    "ServiceUnavailable": (R, True, "腾讯云：服务暂不可用，稍后重试"),
    "AuthFailure.SignatureFailure": (R, True, "腾讯云：请求签名验证失败，请检查 SecretKey"),
    "AuthFailure.SignatureExpire": (R, True, "腾讯云：签名过期（服务器时间不准）"),
    "AuthFailure.SecretIdNotFound": (R, True, "腾讯云：SecretId 不存在，请检查配置"),
    "AuthFailure.UnauthorizedOperation": (R, True, "腾讯云：CAM 未授权"),
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": (R, True, "腾讯云：SdkAppId 校验失败"),
    "UnauthorizedOperation.SdkAppIdIsDisabled": (R, True, "腾讯云：SdkAppId 已被禁用"),
    "UnauthorizedOperation.ServiceSuspendDueToArrears": (R, True, "腾讯云：欠费停止服务"),
    "UnauthorizedOperation.RequestIpNotInWhitelist": (R, True, "腾讯云：请求 IP 不在白名单"),
    "UnauthorizedOperation.RequestPermissionDeny": (R, True, "腾讯云：请求没有权限"),
    "LimitExceeded.AppDailyLimit": (R, True, "腾讯云：应用日下发条数超过上限"),
    "LimitExceeded.AppMainlandChinaDailyLimit": (R, True, "腾讯云：中国大陆日下发条数超过上限"),
    # per-number limits: wait
    "LimitExceeded.PhoneNumberThirtySecondLimit": (W, False, "腾讯云：单个号码30秒内下发超限"),
    "LimitExceeded.PhoneNumberOneHourLimit": (W, False, "腾讯云：单个号码1小时内下发超限"),
    "LimitExceeded.PhoneNumberDailyLimit": (W, False, "腾讯云：单个号码日下发条数超限"),
    "LimitExceeded.PhoneNumberSameContentDailyLimit": (
        W,
        False,
        "腾讯云：单个号码相同内容日下发超限",
    ),
    # permanent
    "InvalidParameterValue.IncorrectPhoneNumber": (P, False, "腾讯云：手机号格式错误"),
    "FailedOperation.PhoneNumberParseFail": (P, False, "腾讯云：号码解析失败"),
    "FailedOperation.PhoneNumberInBlacklist": (P, False, "腾讯云：手机号在免打扰名单中"),
    "FailedOperation.TemplateIncorrectOrUnapproved": (P, False, "腾讯云：模板未审批或内容不匹配"),
    "FailedOperation.TemplateUnapprovedOrNotExist": (P, False, "腾讯云：模板未审批或不存在"),
    "FailedOperation.TemplateIdNotExist": (P, False, "腾讯云：模板 ID 不存在"),
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": (
        P,
        False,
        "腾讯云：模板参数个数与审核通过的模板不一致",
    ),
    "FailedOperation.SignatureIncorrectOrUnapproved": (P, False, "腾讯云：签名未审批或格式错误"),
    "FailedOperation.MissingSignatureList": (P, False, "腾讯云：无法识别签名"),
    "FailedOperation.MissingTemplateList": (P, False, "腾讯云：无法识别模板"),
    "FailedOperation.InsufficientBalanceInSmsPackage": (P, False, "腾讯云：套餐包余量不足"),
    "FailedOperation.ContainSensitiveWord": (P, False, "腾讯云：短信内容含有敏感词"),
    "InvalidParameterValue.ContentLengthLimit": (P, False, "腾讯云：短信内容过长"),
    "InvalidParameterValue.TemplateParameterFormatError": (P, False, "腾讯云：模板参数格式错误"),
    "InvalidParameterValue.TemplateParameterLengthLimit": (P, False, "腾讯云：模板变量超长"),
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": (
        P,
        False,
        "腾讯云：模板变量中禁止使用 URL",
    ),
    "InvalidParameterValue.SdkAppIdNotExist": (P, False, "腾讯云：SdkAppId 不存在"),
    "MissingParameter": (P, False, "腾讯云：缺少参数"),
    "MissingParameter.EmptyPhoneNumberSet": (P, False, "腾讯云：号码列表为空"),
    "InvalidParameter": (P, False, "腾讯云：参数错误"),
}

_TENCENT_WAIT_SECONDS = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
}


def classify_tencent(code: str, message: str | None = None) -> Classified:
    entry = TENCENT_CODES.get(code)
    detail = f"（{code}：{message}）" if message else f"（{code}）"
    if entry is None:
        if code.startswith(("InternalError", "ServiceUnavailable")):
            entry = (R, True, "腾讯云：内部错误，稍后重试")
        elif code.startswith("RequestLimitExceeded"):
            entry = (R, False, "腾讯云：请求频率超限，稍后重试")
        elif code.startswith("AuthFailure"):
            entry = (R, True, "腾讯云：鉴权失败，请检查配置")
        else:
            entry = (P, False, "腾讯云：发送失败")
    outcome, provider_side, text = entry
    retry_after: float | None = None
    if outcome is W:
        retry_after = _TENCENT_WAIT_SECONDS.get(code) or seconds_to_beijing_midnight()
    elif outcome is R and not provider_side:
        retry_after = THROTTLE_RETRY_AFTER
    return Classified(outcome, provider_side, text + detail, retry_after)
