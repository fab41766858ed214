"""The receipt's own words in the receipt's language (en, fa, ar, he, vi).

Pure data. A missing translation falls back to English; a missing key to the key.
"""

from __future__ import annotations

RTL_LANGUAGES = frozenset({"fa", "ar", "he"})
DIGITS = {"fa": "۰۱۲۳۴۵۶۷۸۹", "ar": "٠١٢٣٤٥٦٧٨٩"}

TEXTS: dict[str, dict[str, str]] = {
    "receipt": {"fa": "رسید", "ar": "إيصال", "he": "קבלה", "vi": "Hóa đơn"},
    "reprint": {"fa": "چاپ مجدد", "ar": "إعادة طباعة", "he": "הדפסה חוזרת", "vi": "In lại"},
    "cashier": {"fa": "صندوقدار", "ar": "أمين الصندوق", "he": "קופאי", "vi": "Thu ngân"},
    "terminal": {"fa": "پایانه", "ar": "الجهاز", "he": "מסוף", "vi": "Máy"},
    "item": {"fa": "کالا", "ar": "صنف", "he": "פריט", "vi": "Mặt hàng"},
    "subtotal": {"fa": "جمع", "ar": "المجموع", "he": "סכום ביניים", "vi": "Tạm tính"},
    "total": {"fa": "مبلغ قابل پرداخت", "ar": "المطلوب", "he": "לתשלום", "vi": "Tổng cộng"},
    "points_redeemed": {"fa": "امتیاز استفاده‌شده", "ar": "نقاط مستبدلة",
                        "he": "נקודות שמומשו", "vi": "Điểm đã dùng"},
    "credit_used": {"fa": "اعتبار استفاده‌شده", "ar": "رصيد مستخدم", "he": "זיכוי שנוצל",
                    "vi": "Tín dụng đã dùng"},
    "cash": {"fa": "نقد", "ar": "نقدًا", "he": "מזומן", "vi": "Tiền mặt"},
    "card": {"fa": "کارت", "ar": "بطاقة", "he": "כרטיס", "vi": "Thẻ"},
    "other": {"fa": "سایر", "ar": "أخرى", "he": "אחר", "vi": "Khác"},
    "account": {"fa": "نسیه", "ar": "على الحساب", "he": "בהקפה", "vi": "Ghi nợ"},  # (1.3)
    "change": {"fa": "باقی‌مانده", "ar": "الباقي", "he": "עודף", "vi": "Tiền thối"},
    # (1.3) stored value and gift cards
    "stored_value": {"fa": "کیف پول", "ar": "المحفظة", "he": "ארנק", "vi": "Ví"},
    "gift_card": {"fa": "کارت هدیه", "ar": "بطاقة هدية", "he": "כרטיס מתנה",
                  "vi": "Thẻ quà tặng"},
    "topup": {"fa": "شارژ", "ar": "شحن", "he": "טעינה", "vi": "Nạp"},
    "member": {"fa": "عضو", "ar": "العضو", "he": "חבר מועדון", "vi": "Thành viên"},
    "points_earned": {"fa": "امتیاز این خرید", "ar": "نقاط مكتسبة", "he": "נקודות שנצברו",
                      "vi": "Điểm được cộng"},
    "credit_earned": {"fa": "اعتبار این خرید", "ar": "رصيد مكتسب", "he": "זיכוי שנצבר",
                      "vi": "Tín dụng được cộng"},
    "balances_after": {"fa": "مانده پس از خرید", "ar": "الرصيد بعد الشراء",
                       "he": "יתרה אחרי הקנייה", "vi": "Số dư sau giao dịch"},
    "points": {"fa": "امتیاز", "ar": "نقاط", "he": "נקודות", "vi": "Điểm"},
    "club_credit": {"fa": "اعتبار باشگاه", "ar": "رصيد النادي", "he": "זיכוי מועדון",
                    "vi": "Tín dụng câu lạc bộ"},
    "shop_credit": {"fa": "اعتبار فروشگاه", "ar": "رصيد المتجر", "he": "זיכוי חנות",
                    "vi": "Tín dụng cửa hàng"},
    "offline": {
        "fa": "قیمت در حالت آفلاین محاسبه شد؛ مانده‌ها پس از اتصال تأیید می‌شوند.",
        "ar": "تم التسعير دون اتصال؛ تتأكد الأرصدة عند عودة الاتصال.",
        "he": "התמחור נעשה ללא חיבור; היתרות יאושרו כשהמסוף יתחבר.",
        "vi": "Tính giá khi ngoại tuyến; số dư được xác nhận khi có kết nối.",
    },
    "thanks": {"fa": "از خرید شما سپاسگزاریم", "ar": "شكرًا لتسوقكم", "he": "תודה על קנייתך",
               "vi": "Cảm ơn quý khách"},
    "loyalty": {"fa": "باشگاه مشتریان", "ar": "نادي العملاء", "he": "מועדון לקוחות",
                "vi": "Câu lạc bộ khách hàng"},
    "discount": {"fa": "تخفیف", "ar": "خصم", "he": "הנחה", "vi": "Giảm giá"},
    # Why a benefit applied (the rule's conditions, never its id).
    "why_percent": {"fa": "{pct}٪ تخفیف", "ar": "خصم {pct}٪", "he": "{pct}% הנחה",
                    "vi": "giảm {pct}%"},
    "why_tier": {"fa": "برای سطح {tier}", "ar": "لفئة {tier}", "he": "לדרגת {tier}",
                 "vi": "cho hạng {tier}"},
    "why_category": {"fa": "روی {what}", "ar": "على {what}", "he": "על {what}",
                     "vi": "cho {what}"},
    "why_items": {"fa": "روی کالاهای منتخب", "ar": "على أصناف مختارة", "he": "על פריטים נבחרים",
                  "vi": "cho mặt hàng chọn lọc"},
    "why_birthday": {"fa": "هدیه تولد", "ar": "هدية عيد الميلاد", "he": "מתנת יום הולדת",
                     "vi": "quà sinh nhật"},
    "why_dates": {"fa": "پیشنهاد محدود", "ar": "عرض لفترة محدودة", "he": "מבצע לזמן מוגבל",
                  "vi": "ưu đãi có thời hạn"},
    "why_weekdays": {"fa": "پیشنهاد روز", "ar": "عرض اليوم", "he": "מבצע היום",
                     "vi": "ưu đãi trong ngày"},
    "why_hours": {"fa": "ساعت ویژه", "ar": "ساعة خاصة", "he": "שעה מיוחדת",
                  "vi": "giờ vàng"},
    "why_code": {"fa": "با کد تخفیف", "ar": "بكود الخصم", "he": "בקוד קופון",
                 "vi": "với mã giảm giá"},
    "why_min_gross": {"fa": "خرید بالای {amount}", "ar": "للمشتريات فوق {amount}",
                      "he": "בקנייה מעל {amount}", "vi": "đơn trên {amount}"},
    "why_first": {"fa": "اولین خرید", "ar": "أول عملية شراء", "he": "קנייה ראשונה",
                  "vi": "lần mua đầu tiên"},
    "why_members": {"fa": "برای اعضا", "ar": "للأعضاء", "he": "לחברי מועדון",
                    "vi": "cho thành viên"},
    "why_everyone": {"fa": "پیشنهاد فروشگاه", "ar": "عرض المتجر", "he": "מבצע החנות",
                     "vi": "ưu đãi cửa hàng"},
}

ENGLISH: dict[str, str] = {
    "receipt": "Receipt", "reprint": "REPRINT", "cashier": "Cashier", "terminal": "Terminal",
    "item": "Item", "subtotal": "Subtotal", "total": "TOTAL",
    "points_redeemed": "Points redeemed", "credit_used": "Credit used",
    "cash": "Cash", "card": "Card", "other": "Other", "change": "Change", "account": "On account",
    "stored_value": "Wallet", "gift_card": "Gift card", "topup": "Top-up",
    "member": "Member", "points_earned": "Points earned", "credit_earned": "Credit earned",
    "balances_after": "Balances after this sale", "points": "Points",
    "club_credit": "Club credit", "shop_credit": "Shop credit",
    "offline": "Priced offline: balances are confirmed when the terminal is back online.",
    "thanks": "Thank you for shopping with us", "loyalty": "Loyalty club",
    "discount": "Discount", "why_percent": "{pct}% off", "why_tier": "for {tier} members",
    "why_category": "on {what}", "why_items": "on selected items",
    "why_birthday": "birthday gift", "why_dates": "limited-time offer",
    "why_weekdays": "offer of the day", "why_hours": "happy hour",
    "why_code": "with a coupon code", "why_min_gross": "for purchases over {amount}",
    "why_first": "first purchase", "why_members": "for members",
    "why_everyone": "shop offer",
}


def text(key: str, lang: str, **values: object) -> str:
    """The receipt word ``key`` in ``lang`` with ``values`` filled in."""
    template = TEXTS.get(key, {}).get(lang) or ENGLISH.get(key, key)
    return template.format(**values) if values else template


def digits(value: str, lang: str) -> str:
    """ASCII digits of ``value`` in the language's own digits (Persian, Arabic)."""
    table = DIGITS.get(lang)
    return value.translate(str.maketrans("0123456789", table)) if table else value


def balance_name(kind: str, lang: str) -> str:
    """A balance kind as a customer reads it: ``credit.club`` → "Club credit",
    ``credit.merchant:M-7`` → "Shop credit"; another kind as the club names it."""
    if kind == "points":
        return text("points", lang)
    if kind == "credit.club":
        return text("club_credit", lang)
    if kind.startswith("credit.merchant"):
        return text("shop_credit", lang)
    return kind
