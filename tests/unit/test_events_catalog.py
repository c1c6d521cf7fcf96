"""docs/events.md is generated from the event schemas and must not drift from them."""

from __future__ import annotations

from pathlib import Path

from loyalty_common.events import EVENT_TYPES, catalog_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_the_events_document_matches_the_schemas() -> None:
    assert DOC.read_text() == catalog_markdown() + "\n", "regenerate docs/events.md (see its header)"


def test_the_events_the_services_exchange_are_all_documented() -> None:
    for required in (
        "member.registered",
        "member.phone_verified",
        "referral.qualified",
        "points.earned",
        "points.clawed_back",
        "points.expired",
        "points.expiring_soon",
        "tier.changed",
    ):
        assert required in EVENT_TYPES
