"""The points ledger as plain values and pure functions: a member's book of lots and balances, and the
movements that earning, spending, holding, restoring and expiring make in it.

Every movement is one entry that debits one account and credits another by the same positive amount (so each
transaction balances by construction). Member accounts: available, held, pending, debt. System accounts
(issuance, adjustment, redemption, offset, expiry, clawback) have no balance rows at all: their balances are
sums over entries, so no system row is ever hot. Each credit to `available` makes a lot with its own expiry;
debits take lots earliest-expiry first and record what they took from each lot, so a reversal can put points
back into exactly those lots, with their original expiry.

Nothing here touches the database: `store.py` loads a book under the member's row lock and writes what it
recorded in one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from loyalty_common.errors import InsufficientPoints


class Acct(IntEnum):
    """Ledger accounts. 1-99 are each member's own; 100+ are system accounts."""

    AVAILABLE = 1
    HELD = 2
    PENDING = 3
    DEBT = 4
    ISSUANCE = 101
    ADJUSTMENT = 102
    REDEMPTION = 103
    OFFSET = 104
    EXPIRY = 105
    CLAWBACK = 106


MEMBER_ACCOUNTS = frozenset({Acct.AVAILABLE, Acct.HELD, Acct.PENDING, Acct.DEBT})


class Kind(StrEnum):
    """Entry kinds, as API.md names them."""

    PURCHASE = "purchase"
    REFUND_CLAWBACK = "refund_clawback"
    ACTIVITY = "activity"
    INVITE = "invite"
    LEADERBOARD_PRIZE = "leaderboard_prize"
    TIER_BONUS = "tier_bonus"
    ADJUSTMENT = "adjustment"
    REDEMPTION = "redemption"
    REDEMPTION_CANCEL = "redemption_cancel"
    OFFSET_HOLD = "offset_hold"
    OFFSET_CONFIRM = "offset_confirm"
    OFFSET_RELEASE = "offset_release"
    OFFSET_REFUND = "offset_refund"
    EXPIRY = "expiry"
    DEBT_REPAYMENT = "debt_repayment"
    LOTTERY_DRAW = "lottery_draw"
    LOTTERY_PRIZE = "lottery_prize"


EARNING_KINDS = frozenset({Kind.PURCHASE, Kind.ACTIVITY, Kind.INVITE, Kind.LEADERBOARD_PRIZE, Kind.TIER_BONUS})
"""Credits that count as earned (lifetime, tiers) and make new points out of the issuance account."""

NEW_POINTS_KINDS = EARNING_KINDS | {Kind.ADJUSTMENT, Kind.LOTTERY_PRIZE}
"""Credits of new points (each a new lot). A lottery prize is issued but not earned: it counts for neither
lifetime points nor tiers."""

SYSTEM_ACCOUNT: dict[Kind, Acct] = {
    **dict.fromkeys(EARNING_KINDS, Acct.ISSUANCE),
    Kind.ADJUSTMENT: Acct.ADJUSTMENT,
    Kind.REDEMPTION: Acct.REDEMPTION,
    Kind.REDEMPTION_CANCEL: Acct.REDEMPTION,
    Kind.LOTTERY_DRAW: Acct.REDEMPTION,
    Kind.LOTTERY_PRIZE: Acct.ISSUANCE,
    Kind.OFFSET_CONFIRM: Acct.OFFSET,
    Kind.OFFSET_REFUND: Acct.OFFSET,
    Kind.EXPIRY: Acct.EXPIRY,
    Kind.REFUND_CLAWBACK: Acct.CLAWBACK,
}
"""The system account on the other side of each kind's movements."""


def member_points(debit: Acct, credit: Acct, amount: int) -> int:
    """The signed points a member sees on an entry: its effect on what they can spend, where a growing debt
    shows as negative and a confirmed hold (already shown when it was placed) as zero."""
    if credit == Acct.AVAILABLE or credit == Acct.PENDING:
        return amount
    if debit in (Acct.AVAILABLE, Acct.PENDING, Acct.DEBT):
        return -amount
    return 0


@dataclass
class Lot:
    lot_id: UUID
    points: int
    available: int
    held: int
    earned_at: datetime
    expires_at: datetime

    def fifo_key(self) -> tuple[datetime, datetime, UUID]:
        return (self.expires_at, self.earned_at, self.lot_id)


@dataclass(frozen=True)
class Entry:
    entry_id: UUID
    seq: int
    transaction_id: UUID
    kind: Kind
    debit: Acct
    credit: Acct
    amount: int
    points: int
    available_after: int
    reason: str
    reference: str | None
    created_at: datetime
    lot_id: UUID | None = None
    expires_at: datetime | None = None
    corrects_entry_id: UUID | None = None


@dataclass(frozen=True)
class Movement:
    """What one entry did to one lot."""

    entry_id: UUID
    lot_id: UUID
    available_delta: int
    held_delta: int


def allocate(lots: Iterable[Lot], points: int, *, prefer: UUID | None = None) -> list[tuple[Lot, int]]:
    """Take up to `points` from the lots' available points, earliest expiry first (a preferred lot first of all).

    Returns what to take from each lot; the total is less than `points` when there is not enough.
    """
    taken: list[tuple[Lot, int]] = []
    remaining = points
    ordered = sorted((lot for lot in lots if lot.available > 0), key=lambda lot: (lot.lot_id != prefer, lot.fifo_key()))
    for lot in ordered:
        if remaining == 0:
            break
        take = min(lot.available, remaining)
        taken.append((lot, take))
        remaining -= take
    return taken


def allocate_restore(capacities: Sequence[tuple[Lot, int]], points: int) -> list[tuple[Lot, int]]:
    """Put `points` back into lots an entry took from, latest expiry first (the member keeps them longest).

    `capacities` says how much may still go back into each lot.
    """
    placed: list[tuple[Lot, int]] = []
    remaining = points
    for lot, capacity in sorted(capacities, key=lambda item: item[0].fifo_key(), reverse=True):
        if remaining == 0:
            break
        put = min(capacity, remaining)
        if put > 0:
            placed.append((lot, put))
            remaining -= put
    if remaining:
        raise ValueError(f"cannot restore {points} points: only {points - remaining} were taken")
    return placed


@dataclass
class Balances:
    available: int = 0
    held: int = 0
    pending: int = 0
    debt: int = 0
    lifetime_earned: int = 0


@dataclass
class MemberBook:
    """One member's balances and live lots, as loaded under the member's lock, plus what an operation adds.

    Methods apply one movement each, keep balances and lots in step, and record the entries and lot movements
    for the store to write. They raise before changing anything when the movement is not allowed.
    """

    member_id: UUID
    tier: str
    status: str
    balances: Balances
    seq: int
    now: datetime
    lots: dict[UUID, Lot] = field(default_factory=dict)
    lots_loaded: bool = False
    transaction_id: UUID = field(default_factory=uuid.uuid4)
    entries: list[Entry] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    new_lot_ids: set[UUID] = field(default_factory=set)
    loaded: Balances = field(default_factory=Balances)
    loaded_seq: int = 0

    def __post_init__(self) -> None:
        b = self.balances
        self.loaded = Balances(b.available, b.held, b.pending, b.debt, b.lifetime_earned)
        self.loaded_seq = self.seq

    # -- reading ---------------------------------------------------------------------------------------
    @property
    def available(self) -> int:
        return self.balances.available

    @property
    def debt(self) -> int:
        return self.balances.debt

    @property
    def changed(self) -> bool:
        return bool(self.entries)

    def live_lots(self) -> list[Lot]:
        return sorted((lot for lot in self.lots.values() if lot.available or lot.held), key=Lot.fifo_key)

    # -- movements -------------------------------------------------------------------------------------
    def credit(
        self,
        kind: Kind,
        points: int,
        *,
        earned_at: datetime,
        expires_at: datetime,
        reason: str,
        reference: str | None = None,
        repay_debt: bool = True,
    ) -> Entry:
        """New points into `available` as a new lot. An earning first repays any debt (a second entry)."""
        _positive(points)
        if kind not in NEW_POINTS_KINDS:
            raise ValueError(f"{kind} is not a credit of new points")
        lot = Lot(uuid.uuid4(), points, 0, 0, earned_at, expires_at)
        self.lots[lot.lot_id] = lot
        self.new_lot_ids.add(lot.lot_id)
        self.balances.available += points
        if kind in EARNING_KINDS:
            self.balances.lifetime_earned += points
        entry = self._entry(
            kind,
            SYSTEM_ACCOUNT[kind],
            Acct.AVAILABLE,
            points,
            reason,
            reference,
            lot_id=lot.lot_id,
            expires_at=expires_at,
        )
        self._move(entry, lot, points, 0)
        if repay_debt and self.balances.debt > 0:
            self.repay_debt(reference=reference)
        return entry

    def credit_pending(self, kind: Kind, points: int, *, reason: str, reference: str | None = None) -> Entry:
        """Earned points that wait out a return window: in `pending`, not spendable, not yet a lot."""
        _positive(points)
        if kind not in EARNING_KINDS:
            raise ValueError(f"{kind} cannot be pending")
        self.balances.pending += points
        return self._entry(kind, SYSTEM_ACCOUNT[kind], Acct.PENDING, points, reason, reference)

    def activate_pending(
        self,
        kind: Kind,
        points: int,
        *,
        earned_at: datetime,
        expires_at: datetime,
        reason: str,
        reference: str | None = None,
        corrects_entry_id: UUID | None = None,
    ) -> Entry:
        """Pending points become spendable: a new lot (its validity counted from now), then any debt is repaid."""
        _positive(points)
        if points > self.balances.pending:
            raise ValueError("cannot activate more than is pending")
        lot = Lot(uuid.uuid4(), points, 0, 0, earned_at, expires_at)
        self.lots[lot.lot_id] = lot
        self.new_lot_ids.add(lot.lot_id)
        self.balances.pending -= points
        self.balances.available += points
        if kind in EARNING_KINDS:
            self.balances.lifetime_earned += points
        entry = self._entry(
            kind,
            Acct.PENDING,
            Acct.AVAILABLE,
            points,
            reason,
            reference,
            lot_id=lot.lot_id,
            expires_at=expires_at,
            corrects_entry_id=corrects_entry_id,
        )
        self._move(entry, lot, points, 0)
        if self.balances.debt > 0:
            self.repay_debt(reference=reference)
        return entry

    def cancel_pending(
        self, points: int, *, reason: str, reference: str | None = None, corrects_entry_id: UUID | None = None
    ) -> Entry:
        """A refund inside the return window: the pending points are withdrawn, nothing is clawed from what the
        member can spend, and no debt arises."""
        _positive(points)
        if points > self.balances.pending:
            raise ValueError("cannot cancel more than is pending")
        self.balances.pending -= points
        return self._entry(
            Kind.REFUND_CLAWBACK,
            Acct.PENDING,
            Acct.CLAWBACK,
            points,
            reason,
            reference,
            corrects_entry_id=corrects_entry_id,
        )

    def repay_debt(self, *, reference: str | None = None) -> Entry | None:
        """Use available points to pay back debt, earliest-expiring first."""
        amount = min(self.balances.debt, self.balances.available)
        if amount <= 0:
            return None
        self._require_lots()
        allocations = allocate(self.lots.values(), amount)
        self.balances.available -= amount
        self.balances.debt -= amount
        entry = self._entry(
            Kind.DEBT_REPAYMENT,
            Acct.AVAILABLE,
            Acct.DEBT,
            amount,
            f"{amount} points repaid debt from an earlier refund",
            reference,
        )
        for lot, take in allocations:
            self._move(entry, lot, -take, 0)
        return entry

    def debit(
        self,
        kind: Kind,
        points: int,
        *,
        reason: str,
        reference: str | None = None,
        prefer_lot: UUID | None = None,
        allow_debt: bool = False,
        corrects_entry_id: UUID | None = None,
    ) -> list[Entry]:
        """Take points out of `available`, earliest expiry first. With `allow_debt` the shortfall becomes debt
        (a second entry debiting the debt account); otherwise a shortfall is `insufficient_points`."""
        _positive(points)
        self._require_lots()
        allocations = allocate(self.lots.values(), points, prefer=prefer_lot)
        taken = sum(take for _, take in allocations)
        if taken < points and not allow_debt:
            raise InsufficientPoints(available=self.balances.available, required=points)
        sink = SYSTEM_ACCOUNT[kind]
        entries: list[Entry] = []
        if taken:
            self.balances.available -= taken
            entry = self._entry(
                kind, Acct.AVAILABLE, sink, taken, reason, reference, corrects_entry_id=corrects_entry_id
            )
            for lot, take in allocations:
                self._move(entry, lot, -take, 0)
            entries.append(entry)
        shortfall = points - taken
        if shortfall:
            self.balances.debt += shortfall
            entries.append(
                self._entry(
                    kind,
                    Acct.DEBT,
                    sink,
                    shortfall,
                    f"{reason} ({shortfall} points owed as debt)",
                    reference,
                    corrects_entry_id=corrects_entry_id,
                )
            )
        if kind == Kind.REFUND_CLAWBACK:
            self.balances.lifetime_earned = max(0, self.balances.lifetime_earned - points)
        return entries

    def hold(self, kind: Kind, points: int, *, reason: str, reference: str | None = None) -> Entry:
        """Reserve points: they leave `available` for `held`, lot by lot, and can neither be spent nor expire."""
        _positive(points)
        self._require_lots()
        allocations = allocate(self.lots.values(), points)
        if sum(take for _, take in allocations) < points:
            raise InsufficientPoints(available=self.balances.available, required=points)
        self.balances.available -= points
        self.balances.held += points
        entry = self._entry(kind, Acct.AVAILABLE, Acct.HELD, points, reason, reference)
        for lot, take in allocations:
            self._move(entry, lot, -take, take)
        return entry

    def confirm_hold(
        self,
        kind: Kind,
        held: Sequence[tuple[UUID, int]],
        *,
        reason: str,
        reference: str | None = None,
        corrects_entry_id: UUID | None = None,
    ) -> Entry:
        """Spend held points for good: `held` lists the lots and points the hold reserved."""
        total = self._held_total(held)
        self.balances.held -= total
        entry = self._entry(
            kind,
            Acct.HELD,
            SYSTEM_ACCOUNT[kind],
            total,
            reason,
            reference,
            corrects_entry_id=corrects_entry_id,
        )
        for lot_id, points in held:
            self._move(entry, self.lots[lot_id], 0, -points)
        return entry

    def release_hold(
        self,
        kind: Kind,
        held: Sequence[tuple[UUID, int]],
        *,
        reason: str,
        reference: str | None = None,
        corrects_entry_id: UUID | None = None,
    ) -> Entry:
        """Give held points back to `available`, into the lots they were held from."""
        total = self._held_total(held)
        self.balances.held -= total
        self.balances.available += total
        entry = self._entry(
            kind, Acct.HELD, Acct.AVAILABLE, total, reason, reference, corrects_entry_id=corrects_entry_id
        )
        for lot_id, points in held:
            self._move(entry, self.lots[lot_id], points, -points)
        return entry

    def restore(
        self,
        kind: Kind,
        points: int,
        capacities: Sequence[tuple[UUID, int]],
        *,
        reason: str,
        reference: str | None = None,
        corrects_entry_id: UUID | None = None,
    ) -> Entry:
        """Reverse (part of) a debit: put points back into the very lots it took them from, with their original
        expiry (a lot that has expired meanwhile expires again at the next expiry run)."""
        _positive(points)
        placed = allocate_restore([(self.lots[lot_id], cap) for lot_id, cap in capacities], points)
        self.balances.available += points
        entry = self._entry(
            kind,
            SYSTEM_ACCOUNT[kind],
            Acct.AVAILABLE,
            points,
            reason,
            reference,
            corrects_entry_id=corrects_entry_id,
        )
        for lot, put in placed:
            self._move(entry, lot, put, 0)
        return entry

    def expire(self, as_of: datetime, timezone: ZoneInfo, *, reason: str | None = None) -> list[Entry]:
        """Expire what is left, unheld, of every lot whose last valid instant is before `as_of` (with `reason`,
        when it is not the end of the lot's validity: an erasure expires every lot)."""
        self._require_lots()
        entries: list[Entry] = []
        for lot in sorted(self.lots.values(), key=Lot.fifo_key):
            if lot.available <= 0 or lot.expires_at >= as_of:
                continue
            amount = lot.available
            earned = lot.earned_at.astimezone(timezone).date().isoformat()
            until = lot.expires_at.astimezone(timezone).date().isoformat()
            self.balances.available -= amount
            entry = self._entry(
                Kind.EXPIRY,
                Acct.AVAILABLE,
                Acct.EXPIRY,
                amount,
                reason or f"{amount} points earned on {earned} expired (valid until the end of {until})",
                f"lot:{lot.lot_id}",
            )
            self._move(entry, lot, -amount, 0)
            entries.append(entry)
        return entries

    # -- internals -------------------------------------------------------------------------------------
    def _held_total(self, held: Sequence[tuple[UUID, int]]) -> int:
        total = sum(points for _, points in held)
        _positive(total)
        for lot_id, points in held:
            lot = self.lots.get(lot_id)
            if lot is None or points <= 0 or lot.held < points:
                raise ValueError("the hold does not match the lots' held points")
        if total > self.balances.held:
            raise ValueError("cannot settle more than is held")
        return total

    def _require_lots(self) -> None:
        if not self.lots_loaded:
            raise RuntimeError("this movement needs the member's lots: lock the book with_lots=True")

    def _entry(
        self,
        kind: Kind,
        debit: Acct,
        credit: Acct,
        amount: int,
        reason: str,
        reference: str | None,
        *,
        lot_id: UUID | None = None,
        expires_at: datetime | None = None,
        corrects_entry_id: UUID | None = None,
    ) -> Entry:
        self.seq += 1
        entry = Entry(
            entry_id=uuid.uuid4(),
            seq=self.seq,
            transaction_id=self.transaction_id,
            kind=kind,
            debit=debit,
            credit=credit,
            amount=amount,
            points=member_points(debit, credit, amount),
            available_after=self.balances.available,
            reason=reason,
            reference=reference,
            created_at=self.now,
            lot_id=lot_id,
            expires_at=expires_at,
            corrects_entry_id=corrects_entry_id,
        )
        self.entries.append(entry)
        return entry

    def _move(self, entry: Entry, lot: Lot, available_delta: int, held_delta: int) -> None:
        lot.available += available_delta
        lot.held += held_delta
        if lot.available < 0 or lot.held < 0 or lot.available + lot.held > lot.points:
            raise ValueError(f"lot {lot.lot_id} would go out of bounds")
        self.movements.append(Movement(entry.entry_id, lot.lot_id, available_delta, held_delta))


def _positive(points: int) -> None:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise ValueError(f"points must be a positive integer, got {points!r}")
