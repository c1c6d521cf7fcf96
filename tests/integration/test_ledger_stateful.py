"""Property-based test of the ledger on a real PostgreSQL: random sequences of earning, refunds, adjustments,
spending, holds (confirmed or released), restores and expiry runs at random instants, over several members.

After every step: `verify` finds every invariant intact, and each member's balances equal what a small
reference model of the rules (lots, earliest expiry first, debt) says they must be.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from loyalty_common import devdb
from loyalty_common.clock import TravelClock
from loyalty_common.db import create_engine, unit_of_work
from loyalty_common.errors import InsufficientPoints
from loyalty_common.ledger import Kind, verify
from loyalty_common.timeutil import lot_expiry
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.adjustments.schemas import AdjustmentRequest
from loyalty_points.adjustments.service import adjust
from loyalty_points.context import build_context
from loyalty_points.earning.schemas import PurchaseRequest, RefundRequest
from loyalty_points.earning.service import earn_purchase, refund_order
from loyalty_points.members import lock_member
from tests.conftest import ADMIN_URL_ENV, TEMPLATE_ENV, clone_database, make_settings

T0 = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


@dataclass
class ModelLot:
    expires_at: datetime
    available: int
    held: int = 0


@dataclass
class ModelAccount:
    lots: list[ModelLot] = field(default_factory=list)
    debt: int = 0
    lifetime: int = 0

    @property
    def available(self) -> int:
        return sum(lot.available for lot in self.lots)

    @property
    def held(self) -> int:
        return sum(lot.held for lot in self.lots)

    def take(self, points: int, first: ModelLot | None = None) -> list[tuple[ModelLot, int]]:
        taken = []
        order = sorted(self.lots, key=lambda lot: (lot is not first, lot.expires_at))
        for lot in order:
            if points == 0:
                break
            n = min(lot.available, points)
            if n:
                lot.available -= n
                points -= n
                taken.append((lot, n))
        return taken

    def credit(self, points: int, expires_at: datetime, *, earning: bool) -> ModelLot:
        lot = ModelLot(expires_at, points)
        self.lots.append(lot)
        if earning:
            self.lifetime += points
        repay = min(self.debt, self.available)
        if repay:
            self.take(repay)
            self.debt -= repay
        return lot


class LedgerMachine(RuleBasedStateMachine):
    loop: asyncio.AbstractEventLoop
    database_url: str

    def __init__(self) -> None:
        super().__init__()
        self.clock = TravelClock()
        self.clock.freeze(T0)
        self.settings = make_settings(self.database_url, _TMP)
        self.ctx = build_context(self.settings, self.clock)
        self.engine = create_engine(self.settings, application_name="stateful", pool_size=2)
        self.members: list[uuid.UUID] = []
        self.model: dict[uuid.UUID, ModelAccount] = {}
        self.orders: list[tuple[uuid.UUID, str, int, ModelLot | None, list[int]]] = []
        self.spends: list[tuple[uuid.UUID, uuid.UUID, list[tuple[ModelLot, int]], int]] = []
        self.holds: list[tuple[uuid.UUID, uuid.UUID, list[tuple[ModelLot, int]]]] = []

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.engine.dispose())

    @initialize()
    def make_members(self) -> None:
        async def insert() -> None:
            async with unit_of_work(self.engine) as tx:
                for _ in range(3):
                    member = uuid.uuid4()
                    await tx.execute(
                        text(
                            "INSERT INTO members.members (member_id, status, referral_code, tier,"
                            " created_at, updated_at) VALUES (:m, 'active', :c, 'regular', now(), now())"
                        ),
                        {"m": member, "c": secrets.token_hex(5)},
                    )
                    self.members.append(member)
                    self.model[member] = ModelAccount()

        self.run(insert())

    async def _op(self, body: Any) -> Any:
        async with unit_of_work(self.engine) as tx:
            writes = WriteSet()
            result = await body(tx, writes)
            await writes.flush(tx)
            return result

    @rule(who=st.integers(0, 2), amount_fen=st.integers(1, 80_000))
    def earn(self, who: int, amount_fen: int) -> None:
        member = self.members[who]
        order_id = f"o{uuid.uuid4().hex[:10]}"
        paid_at = self.clock.now()
        data = PurchaseRequest(str(member), order_id, amount_fen, paid_at)
        answer = self.run(self._op(lambda tx, w: earn_purchase(self.ctx, tx, data, member, w)))
        points = amount_fen // 100
        assert answer.body.points == points
        lot = None
        if points:
            lot = self.model[member].credit(points, lot_expiry(paid_at, self.ctx.tz, 365), earning=True)
        self.orders.append((member, order_id, amount_fen, lot, [0, 0, points]))

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(0, 10_000), share=st.integers(1, 100))
    def refund(self, pick: int, share: int) -> None:
        member, order_id, amount_fen, lot, state = self.orders[pick % len(self.orders)]
        refunded, clawed, earned = state
        amount = max(1, (amount_fen - refunded) * share // 100)
        if refunded + amount > amount_fen:
            return
        data = RefundRequest(str(member), order_id, f"r{uuid.uuid4().hex[:8]}", amount)
        answer = self.run(self._op(lambda tx, w: refund_order(self.ctx, tx, data, member, w)))
        due = earned * (refunded + amount) // amount_fen - clawed
        assert answer.body.points_clawed_back == due
        account = self.model[member]
        taken = sum(n for _, n in account.take(due, first=lot))
        account.debt += due - taken
        account.lifetime = max(0, account.lifetime - due)
        state[0], state[1] = refunded + amount, clawed + due

    @rule(who=st.integers(0, 2), points=st.integers(-300, 300).filter(bool))
    def adjust(self, who: int, points: int) -> None:
        member = self.members[who]
        data = AdjustmentRequest(str(member), points, "property test")
        account = self.model[member]
        try:
            self.run(self._op(lambda tx, w: adjust(self.ctx, tx, data, member, "ops", w)))
        except InsufficientPoints:
            assert -points > account.available
            return
        if points > 0:
            account.credit(points, lot_expiry(self.clock.now(), self.ctx.tz, 365), earning=False)
        else:
            account.take(-points)

    async def _ledger(self, member: uuid.UUID, body: Any) -> Any:
        async def op(tx: Any, writes: WriteSet) -> Any:
            book = await lock_member(self.ctx, tx, member, with_lots=True)
            result = await body(tx, book)
            self.ctx.ledger.stage(book, writes)
            return result

        return await self._op(op)

    @rule(who=st.integers(0, 2), points=st.integers(1, 400))
    def spend(self, who: int, points: int) -> None:
        member = self.members[who]
        account = self.model[member]

        async def body(tx: Any, book: Any) -> uuid.UUID:
            return book.debit(Kind.REDEMPTION, points, reason="reward")[0].entry_id  # type: ignore[no-any-return]

        try:
            entry_id = self.run(self._ledger(member, body))
        except InsufficientPoints:
            assert points > account.available
            return
        self.spends.append((member, entry_id, account.take(points), points))

    @precondition(lambda self: self.spends)
    @rule(pick=st.integers(0, 10_000), share=st.integers(1, 100))
    def restore(self, pick: int, share: int) -> None:
        member, entry_id, taken, left = self.spends.pop(pick % len(self.spends))
        points = max(1, left * share // 100)

        async def body(tx: Any, book: Any) -> None:
            capacities = await self.ctx.ledger.restorable(tx, book, entry_id)
            book.restore(Kind.REDEMPTION_CANCEL, points, capacities, reason="cancel", corrects_entry_id=entry_id)

        self.run(self._ledger(member, body))
        remaining = points
        still: list[tuple[ModelLot, int]] = []
        for lot, n in sorted(taken, key=lambda item: item[0].expires_at, reverse=True):
            back = min(n, remaining)
            lot.available += back
            remaining -= back
            if n - back:
                still.append((lot, n - back))
        if left - points:
            self.spends.append((member, entry_id, still, left - points))

    @rule(who=st.integers(0, 2), points=st.integers(1, 300))
    def hold(self, who: int, points: int) -> None:
        member = self.members[who]
        account = self.model[member]

        async def body(tx: Any, book: Any) -> uuid.UUID:
            return book.hold(Kind.OFFSET_HOLD, points, reason="checkout").entry_id  # type: ignore[no-any-return]

        try:
            entry_id = self.run(self._ledger(member, body))
        except InsufficientPoints:
            assert points > account.available
            return
        taken = account.take(points)
        for lot, n in taken:
            lot.held += n
        self.holds.append((member, entry_id, taken))

    @precondition(lambda self: self.holds)
    @rule(pick=st.integers(0, 10_000), confirm=st.booleans())
    def settle(self, pick: int, confirm: bool) -> None:
        member, entry_id, taken = self.holds.pop(pick % len(self.holds))

        async def body(tx: Any, book: Any) -> None:
            held = await self.ctx.ledger.held_by(tx, book, entry_id)
            if confirm:
                book.confirm_hold(Kind.OFFSET_CONFIRM, held, reason="paid", corrects_entry_id=entry_id)
            else:
                book.release_hold(Kind.OFFSET_RELEASE, held, reason="released", corrects_entry_id=entry_id)

        self.run(self._ledger(member, body))
        for lot, n in taken:
            lot.held -= n
            if not confirm:
                lot.available += n

    @rule(days=st.integers(1, 400))
    def time_passes_and_expiry_runs(self, days: int) -> None:
        from loyalty_points.expiry.service import expire

        self.clock.advance(timedelta(days=days))
        as_of = self.clock.now()
        counts = self.run(expire(self.ctx, self.engine, as_of, lambda done, total: None))
        expected = 0
        for account in self.model.values():
            for lot in account.lots:
                if lot.expires_at < as_of and lot.available:
                    expected += lot.available
                    lot.available = 0
        # The job expires every member's due lots (earlier examples' members share the database too).
        assert counts["points"] >= expected

    @invariant()
    def ledger_verifies_and_matches_the_model(self) -> None:
        async def check() -> None:
            async with self.engine.connect() as conn:
                report = await verify(conn, schema.ledger)
                assert report.ok, report.problems
                rows = await conn.execute(
                    text(
                        "SELECT member_id, available, held, debt, lifetime_earned FROM points.accounts"
                        " WHERE member_id = ANY(:members)"
                    ),
                    {"members": self.members},
                )
                for row in rows:
                    account = self.model[row.member_id]
                    assert (row.available, row.held, row.debt) == (account.available, account.held, account.debt)
                    assert row.lifetime_earned == account.lifetime

        self.run(check())


_TMP = Path(tempfile.gettempdir())

SETTINGS = settings(
    max_examples=int(os.environ.get("LEDGER_EXAMPLES", "20")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_ledger_state_machine() -> None:
    loop = asyncio.new_event_loop()
    name = f"{os.environ[TEMPLATE_ENV]}_stateful{secrets.token_hex(3)}"
    try:
        LedgerMachine.loop = loop
        LedgerMachine.database_url = loop.run_until_complete(clone_database(name))
        run_state_machine_as_test(LedgerMachine, settings=SETTINGS)
    finally:
        loop.run_until_complete(devdb.drop_database(os.environ[ADMIN_URL_ENV], name))
        loop.close()
