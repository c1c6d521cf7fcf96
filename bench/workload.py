"""Who the load is about: the seeded members' ids (computable from their rank, in Python and in SQL, so the
load generator and pgbench pick the same members) and the zipfian draw that makes a few members hot."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from uuid import UUID

MEMBER_PREFIX = "bench-member:"


def member_uuid(rank: int) -> UUID:
    """The seeded member of popularity rank `rank` (1 = hottest): md5('bench-member:<rank>') as a UUID."""
    return UUID(hex=hashlib.md5(f"{MEMBER_PREFIX}{rank}".encode(), usedforsecurity=False).hexdigest())


def member_uuid_sql(rank_expr: str) -> str:
    """The same id computed by PostgreSQL from a rank expression (for pgbench scripts)."""
    return f"md5('{MEMBER_PREFIX}' || ({rank_expr})::text)::uuid"


class Zipf:
    """Ranks 1..n with P(k) proportional to k**-s, the same law as pgbench's random_zipfian(1, n, s)."""

    def __init__(self, n: int, s: float, seed: int | None = None) -> None:
        self.n = n
        self.s = s
        self._cumulative = list(itertools.accumulate(k**-s for k in range(1, n + 1)))
        self._total = self._cumulative[-1]
        self._random = random.Random(seed)

    def draw(self) -> int:
        return bisect.bisect_left(self._cumulative, self._random.random() * self._total) + 1

    def share_of_top(self, k: int) -> float:
        """The share of all draws that go to the k hottest members."""
        return self._cumulative[min(k, self.n) - 1] / self._total
