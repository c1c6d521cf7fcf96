"""Business-calendar rules: days, weeks and months in the configured timezone (Asia/Shanghai by default)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from loyalty_common.errors import InvalidBusinessTime
from loyalty_common.rules import BusinessTimeRules

ONE_MICROSECOND = timedelta(microseconds=1)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local day, in UTC."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The last instant of a local day (23:59:59.999999 local), in UTC."""
    return start_of_day(day + timedelta(days=1), tz) - ONE_MICROSECOND


def lot_expiry(earned_at: datetime, tz: ZoneInfo, validity_days: int) -> datetime:
    """A lot earned on local day D is valid to the end of local day D + validity_days."""
    return end_of_day(local_date(earned_at, tz) + timedelta(days=validity_days), tz)


def check_business_time(instant: datetime, now: datetime, rules: BusinessTimeRules) -> None:
    """API.md: a business time more than 5 minutes in the future or older than 90 days is refused."""
    if instant > now + timedelta(seconds=rules.max_future_seconds):
        raise InvalidBusinessTime("The time is in the future")
    if instant < now - timedelta(days=rules.max_age_days):
        raise InvalidBusinessTime(f"The time is more than {rules.max_age_days} days ago")


def display(instant: datetime, tz: ZoneInfo) -> datetime:
    """How instants are shown: in the business timezone, to the second."""
    return instant.astimezone(tz).replace(microsecond=0)


def display_opt(instant: datetime | None, tz: ZoneInfo) -> datetime | None:
    return None if instant is None else display(instant, tz)


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (Jan 31 + 1 month = Feb 28/29)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")
