"""How personal names are shown to other members (leaderboards, referral lists)."""

from __future__ import annotations


def mask_nickname(nickname: str | None) -> str | None:
    """Keep the first character and replace the rest with `*`, at most three: 小明 -> 小*, Alice -> A***."""
    if not nickname:
        return None
    return nickname[0] + "*" * min(3, len(nickname) - 1)
