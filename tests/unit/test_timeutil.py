"""Business calendar: lots expire at the end of the local (Asia/Shanghai) day 365 days after they were earned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from loyalty_common.errors import InvalidBusinessTime
from loyalty_common.rules import BusinessTimeRules
from loyalty_common.timeutil import add_months, check_business_time, display, lot_expiry

SH = ZoneInfo("Asia/Shanghai")


def test_lot_expiry_is_the_end_of_the_local_day() -> None:
    # 2026-03-01 17:30 UTC is 2026-03-02 01:30 in Shanghai: the local day counts.
    earned = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
    expiry = lot_expiry(earned, SH, 365)
    assert display(expiry, SH).isoformat() == "2027-03-02T23:59:59+08:00"
    assert expiry + timedelta(microseconds=1) == datetime(2027, 3, 2, 16, 0, tzinfo=UTC)


def test_business_time_window() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    rules = BusinessTimeRules()
    check_business_time(now + timedelta(minutes=4), now, rules)
    check_business_time(now - timedelta(days=89), now, rules)
    with pytest.raises(InvalidBusinessTime):
        check_business_time(now + timedelta(minutes=6), now, rules)
    with pytest.raises(InvalidBusinessTime):
        check_business_time(now - timedelta(days=91), now, rules)


def test_add_months_clamps_to_the_month_end() -> None:
    assert add_months(datetime(2026, 1, 31).date(), 1).isoformat() == "2026-02-28"
    assert add_months(datetime(2024, 1, 31).date(), 1).isoformat() == "2024-02-29"
    assert add_months(datetime(2026, 11, 15).date(), 12).isoformat() == "2027-11-15"
