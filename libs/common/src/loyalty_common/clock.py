"""The one clock every piece of code reads time from, so tests and backfills can run "as of" any instant."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class TravelClock:
    """A clock that runs with real time but can be moved: `travel_to` sets an offset, `freeze` stops it.

    Tests use it to jump a year ahead while requests keep getting distinct, increasing timestamps.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def travel_to(self, instant: datetime) -> None:
        with self._lock:
            self._frozen = None
            self._offset = instant.astimezone(UTC) - datetime.now(UTC)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta

    def freeze(self, instant: datetime | None = None) -> None:
        with self._lock:
            self._frozen = (instant or (datetime.now(UTC) + self._offset)).astimezone(UTC)

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta(0)
            self._frozen = None
