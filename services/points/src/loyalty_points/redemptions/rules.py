"""Voucher codes: unguessable and, at 100 random bits each, unique in practice without a global index."""

from __future__ import annotations

import secrets

VOUCHER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols (5 bits each), no 0/O or 1/I to misread
VOUCHER_SYMBOLS = 20  # 100 bits
VOUCHER_GROUP = 4


def voucher_code() -> str:
    """`7K2M-Q9XD-...`: 20 symbols from a cryptographically secure source, in groups of four."""
    symbols = "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(VOUCHER_SYMBOLS))
    return "-".join(symbols[i : i + VOUCHER_GROUP] for i in range(0, VOUCHER_SYMBOLS, VOUCHER_GROUP))
