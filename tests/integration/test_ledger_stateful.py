"""Property-based test of the ledger on a real PostgreSQL: random sequences of earning, refunds, adjustments,
spending, holds (confirmed or released), restores and expiry runs at random instants, over several members; and
the same through the spending services: redemptions and their cancels, lottery draws, cash-offset holds with
their confirms (late ones answer hold_expired and release), cancels, refunds and the release-holds job.

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

import pytest
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
from loyalty_common.errors import InsufficientPoints, InvalidState
from loyalty_common.ledger import Kind, verify
from loyalty_common.timeutil import lot_expiry
from loyalty_common.writes import WriteSet
from loyalty_points import schema
from loyalty_points.adjustments.schemas import AdjustmentRequest
from loyalty_points.adjustments.service import adjust
from loyalty_points.context import build_context
from loyalty_points.earning.schemas import PurchaseRequest, RefundRequest
from loyalty_points.earning.service import earn_purchase, refund_order
from loyalty_points.lottery.schemas import LotteryCreate, PrizeCreate
from loyalty_points.lottery.service import create as create_lottery
from loyalty_points.lottery.service import draw
from loyalty_points.members import lock_member
from loyalty_points.offsets.schemas import HoldRequest, OffsetRefundRequest
from loyalty_points.offsets.service import cancel as cancel_offset
from loyalty_points.offsets.service import confirm as confirm_offset
from loyalty_points.offsets.service import hold as hold_offset
from loyalty_points.offsets.service import refund as refund_offset
from loyalty_points.offsets.service import release_expired
from loyalty_points.redemptions.schemas import RedemptionRequest
from loyalty_points.redemptions.service import cancel as cancel_redemption
from loyalty_points.redemptions.service import redeem
from loyalty_points.rewards.schemas import RewardCreate
from loyalty_points.rewards.service import create as create_reward
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


def put_back(taken: list[tuple[ModelLot, int]], points: int) -> list[tuple[ModelLot, int]]:
    """Return points into the lots they were taken from, latest expiry first; what may still go back after."""
    remaining = points
    still: list[tuple[ModelLot, int]] = []
    for lot, n in sorted(taken, key=lambda item: item[0].expires_at, reverse=True):
        back = min(n, remaining)
        lot.available += back
        remaining -= back
        if n - back:
            still.append((lot, n - back))
    assert remaining == 0
    return still


@dataclass
class ModelOffset:
    member: uuid.UUID
    offset_id: uuid.UUID
    points: int
    order_amount_fen: int
    expires_at: datetime
    lots: list[tuple[ModelLot, int]]
    refunded_fen: int = 0
    returned: int = 0


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
        self.rewards: list[tuple[uuid.UUID, int]] = []
        self.lottery: tuple[uuid.UUID, int, int] | None = None
        self.redemptions: list[tuple[uuid.UUID, uuid.UUID, list[tuple[ModelLot, int]]]] = []
        self.cancelled: list[tuple[uuid.UUID, uuid.UUID]] = []
        self.held: list[ModelOffset] = []
        self.confirmed: list[ModelOffset] = []

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

    @initialize()
    def make_catalog(self) -> None:
        for cost in (7, 25, 60):
            data = RewardCreate(name=f"Reward {cost}", points_cost=cost)
            reward = self.run(self._op(lambda tx, w, data=data: create_reward(self.ctx, data, w))).body
            self.rewards.append((reward.reward_id, cost))
        cost, prize = 3, 5
        lottery = LotteryCreate(name="Spin", cost_points=cost, prizes=[PrizeCreate("Five", "points", 1, points=prize)])
        made = self.run(self._op(lambda tx, w: create_lottery(self.ctx, tx, lottery, w))).body
        self.lottery = (made.lottery_id, cost, prize)

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
        still = put_back(taken, points)
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

    # -- through the spending services ---------------------------------------------------------------------
    @rule(who=st.integers(0, 2), pick=st.integers(0, 2), quantity=st.integers(1, 3))
    def redeem(self, who: int, pick: int, quantity: int) -> None:
        member = self.members[who]
        account = self.model[member]
        reward_id, cost = self.rewards[pick]
        data = RedemptionRequest(str(member), str(reward_id), quantity)
        try:
            answer = self.run(self._op(lambda tx, w: redeem(self.ctx, tx, data, member, w)))
        except InsufficientPoints:
            assert cost * quantity > account.available
            return
        assert answer.body.points_spent == cost * quantity
        taken = account.take(cost * quantity)
        assert answer.body.available == account.available
        self.redemptions.append((member, answer.body.redemption_id, taken))

    @precondition(lambda self: self.redemptions)
    @rule(pick=st.integers(0, 10_000))
    def cancel_redemption(self, pick: int) -> None:
        member, redemption_id, taken = self.redemptions.pop(pick % len(self.redemptions))
        answer = self.run(self._op(lambda tx, w: cancel_redemption(self.ctx, tx, redemption_id, member, w)))
        put_back(taken, sum(n for _, n in taken))
        assert answer.body.available == self.model[member].available
        self.cancelled.append((member, redemption_id))

    @precondition(lambda self: self.cancelled)
    @rule(pick=st.integers(0, 10_000))
    def cancel_a_cancelled_redemption(self, pick: int) -> None:
        member, redemption_id = self.cancelled[pick % len(self.cancelled)]
        with pytest.raises(InvalidState) as refused:
            self.run(self._op(lambda tx, w: cancel_redemption(self.ctx, tx, redemption_id, member, w)))
        assert refused.value.extra["current_status"] == "cancelled"

    @rule(who=st.integers(0, 2))
    def draw(self, who: int) -> None:
        assert self.lottery is not None
        lottery_id, cost, prize = self.lottery
        member = self.members[who]
        account = self.model[member]
        try:
            answer = self.run(self._op(lambda tx, w: draw(self.ctx, tx, lottery_id, member, w)))
        except InsufficientPoints:
            assert cost > account.available
            return
        assert answer.body.points_won == prize
        account.take(cost)
        account.credit(prize, lot_expiry(self.clock.now(), self.ctx.tz, 365), earning=False)

    @rule(who=st.integers(0, 2), steps=st.integers(1, 30), extra_fen=st.integers(0, 5_000))
    def hold_offset(self, who: int, steps: int, extra_fen: int) -> None:
        member = self.members[who]
        account = self.model[member]
        points, order_amount_fen = steps * 10, steps * 200 + extra_fen  # within the 50% cap
        data = HoldRequest(str(member), f"o{uuid.uuid4().hex[:10]}", order_amount_fen, points)
        try:
            answer = self.run(self._op(lambda tx, w: hold_offset(self.ctx, tx, data, member, w)))
        except InsufficientPoints:
            assert points > account.available
            return
        taken = account.take(points)
        for lot, n in taken:
            lot.held += n
        expires_at = self.clock.now() + timedelta(minutes=15)
        self.held.append(ModelOffset(member, answer.body.offset_id, points, order_amount_fen, expires_at, taken))

    def _released(self, offset: ModelOffset) -> None:
        for lot, n in offset.lots:
            lot.held -= n
            lot.available += n

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 10_000))
    def confirm_offset(self, pick: int) -> None:
        offset = self.held.pop(pick % len(self.held))
        answer = self.run(self._op(lambda tx, w: confirm_offset(self.ctx, tx, offset.offset_id, offset.member, w)))
        if self.clock.now() >= offset.expires_at:
            assert (answer.status_code, answer.body["code"]) == (409, "hold_expired")
            self._released(offset)
            return
        assert answer.body.status == "confirmed"
        for lot, n in offset.lots:
            lot.held -= n
        self.confirmed.append(offset)

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 10_000))
    def cancel_offset(self, pick: int) -> None:
        offset = self.held.pop(pick % len(self.held))
        answer = self.run(self._op(lambda tx, w: cancel_offset(self.ctx, tx, offset.offset_id, offset.member, w)))
        assert answer.body.status == "cancelled"
        self._released(offset)

    @precondition(lambda self: self.confirmed)
    @rule(pick=st.integers(0, 10_000), share=st.integers(1, 100))
    def refund_offset(self, pick: int, share: int) -> None:
        offset = self.confirmed[pick % len(self.confirmed)]
        amount = max(1, (offset.order_amount_fen - offset.refunded_fen) * share // 100)
        if offset.refunded_fen + amount > offset.order_amount_fen:
            return
        data = OffsetRefundRequest(f"r{uuid.uuid4().hex[:8]}", amount)
        answer = self.run(self._op(lambda tx, w: refund_offset(self.ctx, tx, offset.offset_id, offset.member, data, w)))
        refunded = offset.refunded_fen + amount
        due = offset.points * refunded // offset.order_amount_fen - offset.returned
        assert answer.body.points_returned == due
        offset.lots = put_back(offset.lots, due)
        offset.refunded_fen, offset.returned = refunded, offset.returned + due
        if refunded == offset.order_amount_fen:
            assert offset.returned == offset.points
            self.confirmed.remove(offset)

    @rule(minutes=st.integers(0, 30))
    def release_holds_job_runs(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        as_of = self.clock.now()
        counts = self.run(release_expired(self.ctx, self.engine, as_of, lambda done, total: None))
        due = [offset for offset in self.held if offset.expires_at <= as_of]
        for offset in due:
            self._released(offset)
            self.held.remove(offset)
        assert counts["offsets"] >= len(due)

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
