"""The ledger's pure model: FIFO allocation, holds, restores, debt and expiry on an in-memory book."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_common.errors import InsufficientPoints
from loyalty_common.ledger import Acct, Balances, Kind, Lot, MemberBook, allocate, allocate_restore, member_points

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")


def book(**balances: int) -> MemberBook:
    b = MemberBook(
        member_id=uuid.uuid4(), tier="regular", status="active", balances=Balances(**balances), seq=0, now=T0
    )
    b.lots_loaded = True
    return b


def earn(b: MemberBook, points: int, days: int = 365, kind: Kind = Kind.PURCHASE) -> None:
    b.credit(kind, points, earned_at=T0, expires_at=T0 + timedelta(days=days), reason="test")


def check_invariants(b: MemberBook) -> None:
    lots = list(b.lots.values())
    assert sum(lot.available for lot in lots) == b.balances.available
    assert sum(lot.held for lot in lots) == b.balances.held
    assert all(lot.available >= 0 and lot.held >= 0 and lot.available + lot.held <= lot.points for lot in lots)
    assert b.balances.available >= 0 and b.balances.debt >= 0 and b.balances.held >= 0
    for entry in b.entries:
        assert entry.amount > 0 and entry.debit != entry.credit
        moved_available = sum(m.available_delta for m in b.movements if m.entry_id == entry.entry_id)
        moved_held = sum(m.held_delta for m in b.movements if m.entry_id == entry.entry_id)
        effect = {Acct.AVAILABLE: 0, Acct.HELD: 0}
        for account, sign in ((entry.credit, 1), (entry.debit, -1)):
            if account in effect:
                effect[account] += sign * entry.amount
        assert (moved_available, moved_held) == (effect[Acct.AVAILABLE], effect[Acct.HELD])
    assert [e.seq for e in b.entries] == list(range(b.loaded_seq + 1, b.seq + 1))


def test_allocate_takes_earliest_expiry_first() -> None:
    soon = Lot(uuid.uuid4(), 10, 10, 0, T0, T0 + timedelta(days=10))
    late = Lot(uuid.uuid4(), 10, 10, 0, T0, T0 + timedelta(days=100))
    assert [(lot.lot_id, n) for lot, n in allocate([late, soon], 15)] == [(soon.lot_id, 10), (late.lot_id, 5)]


def test_allocate_prefers_a_named_lot_then_fifo() -> None:
    soon = Lot(uuid.uuid4(), 10, 10, 0, T0, T0 + timedelta(days=10))
    late = Lot(uuid.uuid4(), 10, 10, 0, T0, T0 + timedelta(days=100))
    assert [(lot.lot_id, n) for lot, n in allocate([soon, late], 12, prefer=late.lot_id)] == [
        (late.lot_id, 10),
        (soon.lot_id, 2),
    ]


def test_allocate_reports_a_shortfall_by_returning_less() -> None:
    lot = Lot(uuid.uuid4(), 5, 5, 0, T0, T0 + timedelta(days=1))
    assert sum(n for _, n in allocate([lot], 8)) == 5


def test_restore_goes_back_latest_expiry_first_within_capacity() -> None:
    soon = Lot(uuid.uuid4(), 10, 0, 0, T0, T0 + timedelta(days=10))
    late = Lot(uuid.uuid4(), 10, 0, 0, T0, T0 + timedelta(days=100))
    placed = allocate_restore([(soon, 10), (late, 4)], 6)
    assert [(lot.lot_id, n) for lot, n in placed] == [(late.lot_id, 4), (soon.lot_id, 2)]
    with pytest.raises(ValueError, match="cannot restore"):
        allocate_restore([(soon, 1)], 2)


def test_member_points_sign_is_what_the_member_sees() -> None:
    assert member_points(Acct.ISSUANCE, Acct.AVAILABLE, 5) == 5
    assert member_points(Acct.AVAILABLE, Acct.REDEMPTION, 5) == -5
    assert member_points(Acct.DEBT, Acct.CLAWBACK, 5) == -5
    assert member_points(Acct.AVAILABLE, Acct.HELD, 5) == -5
    assert member_points(Acct.HELD, Acct.AVAILABLE, 5) == 5
    assert member_points(Acct.HELD, Acct.OFFSET, 5) == 0


def test_debit_beyond_available_is_refused_and_changes_nothing() -> None:
    b = book()
    earn(b, 10)
    before = (b.balances.available, len(b.entries), len(b.movements))
    with pytest.raises(InsufficientPoints) as raised:
        b.debit(Kind.REDEMPTION, 11, reason="x")
    assert raised.value.extra == {"available": 10, "required": 11}
    assert (b.balances.available, len(b.entries), len(b.movements)) == before


def test_clawback_shortfall_becomes_debt_and_the_next_earning_repays_it() -> None:
    b = book()
    earn(b, 30)
    entries = b.debit(Kind.REFUND_CLAWBACK, 50, reason="refund", allow_debt=True)
    assert [(e.debit, e.amount, e.points) for e in entries] == [(Acct.AVAILABLE, 30, -30), (Acct.DEBT, 20, -20)]
    assert (b.balances.available, b.balances.debt) == (0, 20)
    earn(b, 25)
    repayment = b.entries[-1]
    assert repayment.kind == Kind.DEBT_REPAYMENT and repayment.amount == 20 and repayment.points == -20
    assert (b.balances.available, b.balances.debt) == (5, 0)
    check_invariants(b)


def test_hold_confirm_release_keep_lots_in_step() -> None:
    b = book()
    earn(b, 40, days=10)
    earn(b, 40, days=20)
    hold = b.hold(Kind.OFFSET_HOLD, 50, reason="checkout")
    assert (b.balances.available, b.balances.held) == (30, 50)
    held = [(m.lot_id, m.held_delta) for m in b.movements if m.entry_id == hold.entry_id]
    b.release_hold(Kind.OFFSET_RELEASE, held, reason="released")
    assert (b.balances.available, b.balances.held) == (80, 0)
    hold2 = b.hold(Kind.OFFSET_HOLD, 20, reason="checkout")
    held2 = [(m.lot_id, m.held_delta) for m in b.movements if m.entry_id == hold2.entry_id]
    confirm = b.confirm_hold(Kind.OFFSET_CONFIRM, held2, reason="paid")
    assert confirm.points == 0 and (b.balances.available, b.balances.held) == (60, 0)
    check_invariants(b)


def test_expiry_takes_only_unheld_points_of_lots_past_their_last_instant() -> None:
    b = book()
    earn(b, 10, days=1)
    earn(b, 10, days=100)
    b.hold(Kind.OFFSET_HOLD, 4, reason="hold")  # takes 4 from the soon-expiring lot
    expired = b.expire(T0 + timedelta(days=2), TZ)
    assert [e.amount for e in expired] == [6]
    assert (b.balances.available, b.balances.held) == (10, 4)
    assert b.expire(T0 + timedelta(days=2), TZ) == []
    check_invariants(b)


def test_a_lottery_prize_is_new_points_that_are_issued_but_not_earned() -> None:
    b = book()
    earn(b, 30)
    prize = b.credit(
        Kind.LOTTERY_PRIZE, 50, earned_at=T0, expires_at=T0 + timedelta(days=365), reason="won in a lottery"
    )
    assert (prize.debit, prize.credit, prize.amount, prize.points) == (Acct.ISSUANCE, Acct.AVAILABLE, 50, 50)
    assert prize.lot_id is not None and b.lots[prize.lot_id].available == 50
    assert (b.balances.available, b.balances.lifetime_earned) == (80, 30)
    check_invariants(b)


def test_a_lottery_prize_repays_debt_first_like_any_new_points() -> None:
    b = book()
    earn(b, 10)
    b.debit(Kind.REFUND_CLAWBACK, 25, reason="refund", allow_debt=True)
    b.credit(Kind.LOTTERY_PRIZE, 20, earned_at=T0, expires_at=T0 + timedelta(days=365), reason="prize")
    assert b.entries[-1].kind == Kind.DEBT_REPAYMENT
    assert (b.balances.available, b.balances.debt, b.balances.lifetime_earned) == (5, 0, 0)
    check_invariants(b)


def test_a_lottery_draw_spends_available_points_into_the_redemption_account() -> None:
    b = book()
    earn(b, 10, days=5)
    earn(b, 10, days=50)
    [draw] = b.debit(Kind.LOTTERY_DRAW, 15, reason="one draw")
    assert (draw.debit, draw.credit, draw.amount, draw.points) == (Acct.AVAILABLE, Acct.REDEMPTION, 15, -15)
    assert sorted(lot.available for lot in b.lots.values()) == [0, 5]
    with pytest.raises(InsufficientPoints):
        b.debit(Kind.LOTTERY_DRAW, 6, reason="one draw too many")
    check_invariants(b)


@pytest.mark.parametrize("kind", [Kind.LOTTERY_DRAW, Kind.REDEMPTION, Kind.OFFSET_REFUND, Kind.EXPIRY])
def test_only_kinds_that_make_new_points_may_credit(kind: Kind) -> None:
    with pytest.raises(ValueError, match="not a credit"):
        book().credit(kind, 5, earned_at=T0, expires_at=T0 + timedelta(days=1), reason="x")


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 500), st.integers(1, 400)),
        st.tuples(st.just("spend"), st.integers(1, 600), st.just(0)),
        st.tuples(st.just("clawback"), st.integers(1, 600), st.just(0)),
        st.tuples(st.just("hold"), st.integers(1, 300), st.just(0)),
        st.tuples(st.just("settle"), st.booleans(), st.just(0)),
        st.tuples(st.just("expire"), st.integers(0, 500), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_random_operations_keep_every_invariant(ops: list[tuple[str, object, int]]) -> None:
    b = book()
    holds: list[list[tuple[uuid.UUID, int]]] = []
    for op, arg, extra in ops:
        if op == "earn":
            earn(b, int(arg), days=extra)  # type: ignore[call-overload]
        elif op == "spend":
            try:
                b.debit(Kind.REDEMPTION, int(arg), reason="spend")  # type: ignore[call-overload]
            except InsufficientPoints:
                pass
        elif op == "clawback":
            b.debit(Kind.REFUND_CLAWBACK, int(arg), reason="refund", allow_debt=True)  # type: ignore[call-overload]
        elif op == "hold":
            try:
                entry = b.hold(Kind.OFFSET_HOLD, int(arg), reason="hold")  # type: ignore[call-overload]
            except InsufficientPoints:
                continue
            holds.append([(m.lot_id, m.held_delta) for m in b.movements if m.entry_id == entry.entry_id])
        elif op == "settle" and holds:
            held = holds.pop(0)
            if arg:
                b.confirm_hold(Kind.OFFSET_CONFIRM, held, reason="paid")
            else:
                b.release_hold(Kind.OFFSET_RELEASE, held, reason="released")
        elif op == "expire":
            b.expire(T0 + timedelta(days=int(arg)), TZ)  # type: ignore[call-overload]
        check_invariants(b)
