"""Loads a member's book under the member's row lock and stages what an operation recorded in it."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from uuid import UUID

from sqlalchemy import ColumnElement, Select, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert

from loyalty_common.db import Tx
from loyalty_common.ledger.model import Acct, Balances, Lot, MemberBook
from loyalty_common.ledger.tables import LedgerTables
from loyalty_common.metrics import LEDGER_ENTRIES
from loyalty_common.writes import WriteSet


class LedgerStore:
    def __init__(self, tables: LedgerTables) -> None:
        self.tables = tables
        a = tables.accounts
        # Built once: locking is on every operation's path, so it skips constructing the statement each time.
        self._lock_account = (
            select(a.c.tier, a.c.status, a.c.available, a.c.held, a.c.pending, a.c.debt, a.c.lifetime_earned,
                   a.c.entry_seq)
            .where(a.c.member_id == bindparam("member_id"))
            .with_for_update()
        )  # fmt: skip

    async def open_account(self, tx: Tx, member_id: UUID, *, tier: str, status: str, now: datetime) -> None:
        """Create the member's account row if it is not there yet (first sight)."""
        accounts = self.tables.accounts
        await tx.execute(
            insert(accounts)
            .values(member_id=member_id, tier=tier, status=status, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=[accounts.c.member_id])
        )

    async def lock(self, tx: Tx, member_id: UUID, now: datetime, *, with_lots: bool) -> MemberBook | None:
        """Lock the member's account row until commit and load the book. Operations on one member are
        serialized here; different members proceed in parallel. Returns None when there is no account."""
        row = (await tx.execute(self._lock_account, {"member_id": member_id})).first()
        if row is None:
            return None
        book = MemberBook(
            member_id=member_id,
            tier=row.tier,
            status=row.status,
            balances=Balances(row.available, row.held, row.pending, row.debt, row.lifetime_earned),
            seq=row.entry_seq,
            now=now,
        )
        # An earning repays debt from lots, so a member in debt always gets their lots loaded.
        if with_lots or row.debt > 0:
            await self.load_live_lots(tx, book)
        return book

    async def lock_many(self, tx: Tx, member_ids: list[UUID], now: datetime) -> list[MemberBook]:
        """Lock several members' accounts (in member order, so batches never deadlock each other) and load
        their books with live lots, in two statements: for batch jobs such as expiry."""
        a, lots = self.tables.accounts, self.tables.lots
        rows = await tx.execute(
            select(
                a.c.member_id,
                a.c.tier,
                a.c.status,
                a.c.available,
                a.c.held,
                a.c.pending,
                a.c.debt,
                a.c.lifetime_earned,
                a.c.entry_seq,
            )
            .where(a.c.member_id.in_(member_ids))
            .order_by(a.c.member_id)
            .with_for_update()
        )
        books = {
            r.member_id: MemberBook(
                member_id=r.member_id,
                tier=r.tier,
                status=r.status,
                balances=Balances(r.available, r.held, r.pending, r.debt, r.lifetime_earned),
                seq=r.entry_seq,
                now=now,
                lots_loaded=True,
            )
            for r in rows
        }
        if books:
            for r in await tx.execute(self._live_lots(lots.c.member_id.in_(list(books)))):
                books[r.member_id].lots[r.lot_id] = Lot(
                    r.lot_id, r.points, r.available, r.held, r.earned_at, r.expires_at
                )
        return list(books.values())

    async def load_live_lots(self, tx: Tx, book: MemberBook) -> None:
        for r in await tx.execute(self._live_lots(self.tables.lots.c.member_id == book.member_id)):
            book.lots.setdefault(r.lot_id, Lot(r.lot_id, r.points, r.available, r.held, r.earned_at, r.expires_at))
        book.lots_loaded = True

    def _live_lots(self, members: ColumnElement[bool]) -> Select[tuple[UUID, UUID, int, int, int, datetime, datetime]]:
        """The lots of `members` that still hold points (available or held): the ones an operation may touch."""
        lots = self.tables.lots
        return select(
            lots.c.member_id,
            lots.c.lot_id,
            lots.c.points,
            lots.c.available,
            lots.c.held,
            lots.c.earned_at,
            lots.c.expires_at,
        ).where(members, (lots.c.available > 0) | (lots.c.held > 0))

    async def held_by(self, tx: Tx, book: MemberBook, hold_entry_id: UUID) -> list[tuple[UUID, int]]:
        """The lots and points a hold entry reserved (to confirm or release it)."""
        moved = await self._movements(tx, book, [hold_entry_id])
        return [(lot_id, held) for lot_id, (_, held) in moved.items() if held > 0]

    async def restorable(self, tx: Tx, book: MemberBook, entry_id: UUID) -> list[tuple[UUID, int]]:
        """What may still go back into each lot an entry took from: taken minus what corrections of it
        (entries with corrects_entry_id = entry_id that put points back) have restored."""
        e = self.tables.entries
        corrections = (
            (
                await tx.execute(
                    select(e.c.entry_id).where(
                        e.c.member_id == book.member_id,
                        e.c.corrects_entry_id == entry_id,
                        e.c.credit_account == literal_column(str(int(Acct.AVAILABLE))),
                    )
                )
            )
            .scalars()
            .all()
        )
        taken = await self._movements(tx, book, [entry_id])
        restored = await self._movements(tx, book, list(corrections)) if corrections else {}
        capacities = []
        for lot_id, (available_delta, held_delta) in taken.items():
            out = -(available_delta + held_delta)  # what left the lot for good (a debit, or a confirmed hold)
            back = restored.get(lot_id, (0, 0))[0]
            if out - back > 0:
                capacities.append((lot_id, out - back))
        return capacities

    async def _movements(self, tx: Tx, book: MemberBook, entry_ids: list[UUID]) -> dict[UUID, tuple[int, int]]:
        m, lots = self.tables.lot_movements, self.tables.lots
        rows = await tx.execute(
            select(
                m.c.lot_id,
                func.sum(m.c.available_delta).label("available_delta"),
                func.sum(m.c.held_delta).label("held_delta"),
                lots.c.points,
                lots.c.available,
                lots.c.held,
                lots.c.earned_at,
                lots.c.expires_at,
            )
            .join(lots, (lots.c.member_id == m.c.member_id) & (lots.c.lot_id == m.c.lot_id))
            .where(m.c.member_id == book.member_id, m.c.entry_id.in_(entry_ids))
            .group_by(m.c.lot_id, lots.c.points, lots.c.available, lots.c.held, lots.c.earned_at, lots.c.expires_at)
        )
        moved: dict[UUID, tuple[int, int]] = {}
        for r in rows:
            book.lots.setdefault(r.lot_id, Lot(r.lot_id, r.points, r.available, r.held, r.earned_at, r.expires_at))
            moved[r.lot_id] = (int(r.available_delta), int(r.held_delta))
        return moved

    def stage(self, book: MemberBook, writes: WriteSet) -> None:
        """Stage the book's new entries, lots and movements, and its balance changes, into `writes`."""
        if not book.changed:
            return
        t = self.tables
        b, before = book.balances, book.loaded
        writes.update(
            t.accounts,
            keys={"member_id": book.member_id},
            deltas={
                "available": b.available - before.available,
                "held": b.held - before.held,
                "pending": b.pending - before.pending,
                "debt": b.debt - before.debt,
                "lifetime_earned": b.lifetime_earned - before.lifetime_earned,
            },
            sets={"entry_seq": book.seq, "updated_at": book.now},
            guards={"entry_seq": book.loaded_seq},
        )
        for e in book.entries:
            LEDGER_ENTRIES.labels(str(e.kind)).inc()
            writes.insert(
                t.entries,
                {
                    "member_id": book.member_id,
                    "entry_id": e.entry_id,
                    "seq": e.seq,
                    "transaction_id": e.transaction_id,
                    "kind": str(e.kind),
                    "debit_account": int(e.debit),
                    "credit_account": int(e.credit),
                    "amount": e.amount,
                    "points": e.points,
                    "available_after": e.available_after,
                    "reason": e.reason,
                    "reference": e.reference,
                    "lot_id": e.lot_id,
                    "corrects_entry_id": e.corrects_entry_id,
                    "created_at": e.created_at,
                    "expires_at": e.expires_at,
                },
            )
        lot_deltas: dict[UUID, list[int]] = defaultdict(lambda: [0, 0])
        for mv in book.movements:
            writes.insert(
                t.lot_movements,
                {
                    "member_id": book.member_id,
                    "entry_id": mv.entry_id,
                    "lot_id": mv.lot_id,
                    "available_delta": mv.available_delta,
                    "held_delta": mv.held_delta,
                },
            )
            if mv.lot_id not in book.new_lot_ids:
                lot_deltas[mv.lot_id][0] += mv.available_delta
                lot_deltas[mv.lot_id][1] += mv.held_delta
        for lot_id in book.new_lot_ids:
            lot = book.lots[lot_id]
            creator = next(e.entry_id for e in book.entries if e.lot_id == lot_id)
            writes.insert(
                t.lots,
                {
                    "member_id": book.member_id,
                    "lot_id": lot_id,
                    "entry_id": creator,
                    "points": lot.points,
                    "available": lot.available,
                    "held": lot.held,
                    "earned_at": lot.earned_at,
                    "expires_at": lot.expires_at,
                },
            )
        for lot_id, (available_delta, held_delta) in lot_deltas.items():
            if available_delta or held_delta:
                writes.update(
                    t.lots,
                    keys={"member_id": book.member_id, "lot_id": lot_id},
                    deltas={"available": available_delta, "held": held_delta},
                )
