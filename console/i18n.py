"""The console's words in English and Traditional Chinese, and which of them a visitor reads."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

LANGUAGES = ("en", "zh-Hant")
LANGUAGE_COOKIE = "facility_lang"

# key: (English, 繁體中文)
WORDS: dict[str, tuple[str, str]] = {
    "app": ("Facility console", "物業設施控制台"),
    "tickets": ("Tickets", "工單"),
    "devices": ("Devices", "設備"),
    "patrols": ("Patrols", "巡更"),
    "report": ("Occupant report", "住戶報修"),
    "my_round": ("My round", "我的巡更"),
    "log_in": ("Log in", "登入"),
    "log_out": ("Log out", "登出"),
    "username": ("User name", "使用者名稱"),
    "password": ("Password", "密碼"),
    "login_failed": ("Wrong user name or password.", "使用者名稱或密碼錯誤。"),
    "login_locked": ("Too many failed log-ins. Try again in {s} s.", "登入失敗次數過多，請於 {s} 秒後再試。"),
    "session_ended": ("Your session ended; log in again.", "工作階段已結束，請重新登入。"),
    "language": ("Language", "語言"),
    "skip": ("Skip to content", "跳至內容"),
    # tickets
    "class": ("Class", "等級"),
    "status": ("Status", "狀態"),
    "source": ("Source", "來源"),
    "site": ("Site", "管理處"),
    "building": ("Building", "大樓"),
    "floor": ("Floor", "樓層"),
    "location": ("Location", "位置"),
    "device": ("Device", "設備"),
    "title": ("What", "事項"),
    "opened": ("Opened", "開立"),
    "due": ("Response due", "回應期限"),
    "overdue": ("Overdue", "逾期"),
    "only_overdue": ("Only overdue", "僅逾期"),
    "any": ("Any", "全部"),
    "filter": ("Filter", "篩選"),
    "no_tickets": ("No tickets match.", "沒有符合的工單。"),
    "counts": ("Tickets by class and status", "依等級與狀態統計"),
    "total": ("Total", "合計"),
    "ticket": ("Ticket", "工單"),
    "description": ("Description", "說明"),
    "reporter": ("Reported by", "報修人"),
    "assignee": ("Assignee", "負責人"),
    "occurrences": ("Occurrences", "發生次數"),
    "latest_readings": ("Latest readings", "最新讀數"),
    "chart": ("Recent values", "近期數值"),
    "audit": ("Audit trail", "處理紀錄"),
    "actions": ("Actions", "操作"),
    "refused": ("Refused", "無法執行"),
    "steps": ("Steps this class requires (§4.2.3)", "此等級須完成的步驟（§4.2.3）"),
    "emergency_plan_started": ("Emergency plan started", "已啟動應急預案"),
    "leadership_informed": ("Leadership informed", "已通報上級"),
    "temporary_measures": ("Temporary measures", "臨時措施"),
    "cause": ("Cause", "故障原因"),
    "measures": ("Measures taken", "處理措施"),
    "result": ("Result", "處理結果"),
    "followup": ("Follow-up with the occupant", "住戶回訪"),
    "note": ("Note", "備註"),
    "no_readings": ("No readings yet.", "尚無讀數。"),
    "recorded": ("Recorded", "已記錄"),
    "not_recorded": ("Not recorded", "未記錄"),
    # actions
    "acknowledge": ("Acknowledge", "確認"),
    "assign": ("Assign", "指派"),
    "start": ("Start work", "開始處理"),
    "resolve": ("Resolve", "解決"),
    "close": ("Close", "結案"),
    "reopen": ("Reopen", "重新開啟"),
    # classes
    "routine": ("Routine", "一般"),
    "major": ("Major", "重大"),
    "emergency": ("Emergency", "緊急"),
    # statuses
    "open": ("Open", "待處理"),
    "acknowledged": ("Acknowledged", "已確認"),
    "in_progress": ("In progress", "處理中"),
    "resolved": ("Resolved", "已解決"),
    "closed": ("Closed", "已結案"),
    # sources
    "alarm": ("Alarm", "告警"),
    "occupant": ("Occupant", "住戶報修"),
    "patrol": ("Patrol", "巡更"),
    "maintenance": ("Maintenance", "維護保養"),
    # devices
    "online": ("Online", "在線"),
    "offline": ("Offline", "離線"),
    "last_seen": ("Last seen", "最後回報"),
    "latest_values": ("Latest values", "最新數值"),
    "active_alarms": ("Active alarms", "現行告警"),
    "type": ("Type", "類型"),
    "no_devices": ("No devices.", "沒有設備。"),
    "unknown_place": ("Place not recorded", "未登記位置"),
    # patrols
    "rounds_today": ("Today's rounds", "今日巡更"),
    "route": ("Route", "路線"),
    "guard": ("Guard", "保全人員"),
    "checkpoint": ("Checkpoint", "巡更點"),
    "scanned": ("Scanned", "已打卡"),
    "next_due": ("Next due", "下一個巡更點"),
    "no_rounds": ("No rounds today.", "今日沒有巡更。"),
    "pending": ("Pending", "待巡"),
    "on_time": ("On time", "準時"),
    "late": ("Late", "遲到"),
    "missed": ("Missed", "漏巡"),
    "early": ("Early", "提早"),
    "wrong_order": ("Out of order", "順序錯誤"),
    "scheduled": ("Scheduled", "已排定"),
    "completed": ("Completed", "已完成"),
    "incomplete": ("Incomplete", "未完成"),
    # occupant report
    "new_report": ("New occupant report", "新增住戶報修"),
    "what_reported": ("What was reported", "報修內容"),
    "details": ("Details", "詳細說明"),
    "contact": ("Contact (name, unit, phone)", "聯絡方式（姓名、戶號、電話）"),
    "device_optional": ("Device (optional)", "設備（選填）"),
    "file_report": ("File the report", "送出報修"),
    "my_reports": ("Occupants' reports", "住戶報修紀錄"),
    "report_filed": ("Report filed as ticket #{id}.", "已建立報修工單 #{id}。"),
    "report_joined": (
        "Ticket #{id} was already open for this; the report joined it.",
        "此處已有處理中的工單 #{id}，報修已併入該工單。",
    ),
    "progress": ("Progress", "處理進度"),
    "none": ("None", "無"),
    # roles
    "admin": ("Administrator", "系統管理員"),
    "manager": ("Manager", "管理處主任"),
    "engineer": ("Engineer", "工程人員"),
    "front_desk": ("Front desk", "客服櫃檯"),
    # the audit trail's entries
    "audit_open": ("Opened", "開立"),
    "audit_acknowledge": ("Acknowledged", "確認"),
    "audit_assign": ("Assigned", "指派"),
    "audit_start": ("Work started", "開始處理"),
    "audit_resolve": ("Resolved", "解決"),
    "audit_close": ("Closed", "結案"),
    "audit_reopen": ("Reopened", "重新開啟"),
    "audit_occurrence": ("Occurred again", "再次發生"),
    "audit_class_raised": ("Class raised", "等級提升"),
    "audit_alarm_cleared": ("Alarm cleared", "告警解除"),
    "audit_alarm_acknowledged": ("Alarm acknowledged", "告警已確認"),
    "audit_renotified": ("Notified again", "再次通知"),
    "audit_escalated": ("Escalated", "已升級通報"),
    # work orders (maintenance plans)
    "checklist": ("Checklist", "保養項目"),
    "work_order_due": ("Due", "到期"),
    "trigger_calendar": ("by the calendar", "依週期"),
    "trigger_counter": ("by its counter", "依運行次數"),
    "trigger_running_hours": ("by running hours", "依運行時數"),
    "done_by": ("done by {who} at {when}", "由 {who} 於 {when} 完成"),
    "mark": ("Mark", "標記"),
    "not_marked": ("Not marked", "未標記"),
    "item_done": ("Done", "已完成"),
    "item_not_done": ("Not done", "未完成"),
    "save_checklist": ("Save the checklist", "儲存保養項目"),
    "audit_checklist": ("Checklist marked", "標記保養項目"),
}

# Values of enums shown as words: the same keys.
_INDEX = {"en": 0, "zh-Hant": 1}


def choose(request: Request) -> str:
    """The visitor's language: their choice (a cookie), else the browser's first known language."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-Hant"
        if tag.startswith("en"):
            return "en"
    return "en"


def translator(language: str) -> Callable[..., str]:
    """`t(key, default, **values)`: the word for `key` in `language`; else `default`, else the key."""
    index = _INDEX.get(language, 0)

    def t(key: object, default: str | None = None, **values: object) -> str:
        words = WORDS.get(str(key))
        text = words[index] if words else (default if default is not None else str(key))
        return text.format(**values) if values else text

    return t
