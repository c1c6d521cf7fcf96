"""The scenarios as plug-ins: each is a weighted mix of operations (bench/operations.py). A scenario runs with
the operations the points service offers (read from its /schema/openapi.json): `mixed` drops its 10%
redemption/offset share while neither endpoint exists, and `leaderboard` is skipped until its endpoints exist,
each with a note saying so."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.operations import REQUIRED_PATHS


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    mix: dict[str, int]
    alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """A share of the mix that any one of several operations may fill (the first one the service offers)."""
    fixed_rate: bool = False
    """Measure latency at the configured read rate (1,000/s) rather than at 70% of the maximum."""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("earn", "POST /v1/points/purchases", {"purchase": 100}),
    Scenario(
        "mixed",
        "70% purchase, 20% account read, 10% offset hold+confirm (or redemption)",
        {"purchase": 70, "account": 20},
        alternatives={"spend": ("offset", "redemption")},
    ),
    Scenario("read", "account (50%) and a page of entries (50%)", {"account": 50, "entries": 50}, fixed_rate=True),
    Scenario("expire", "expiring points within 90 days", {"expiring": 100}),
    Scenario("leaderboard", "weekly board top 10 (50%) and a member's rank (50%)", {"leaderboard": 100}),
)

ALTERNATIVE_WEIGHTS = {"spend": 10}


@dataclass(frozen=True)
class Plan:
    scenario: Scenario
    mix: dict[str, int]
    notes: list[str]


def offered(operation: str, paths: set[str]) -> bool:
    return all(path in paths for path in REQUIRED_PATHS[operation])


def plan(scenario: Scenario, paths: set[str]) -> tuple[Plan | None, list[str]]:
    """The mix to run with the endpoints the service has; None (and why) when the scenario cannot run."""
    notes: list[str] = []
    mix: dict[str, int] = {}
    for operation, weight in scenario.mix.items():
        if offered(operation, paths):
            mix[operation] = weight
        else:
            missing = [p for p in REQUIRED_PATHS[operation] if p not in paths]
            notes.append(f"{operation} skipped: the points service has no {', '.join(missing)}")
    for share, candidates in scenario.alternatives.items():
        chosen = next((c for c in candidates if offered(c, paths)), None)
        if chosen is None:
            notes.append(
                f"the {ALTERNATIVE_WEIGHTS[share]}% {share} share is skipped: the points service offers none of "
                f"{', '.join(candidates)} yet (paths {', '.join(p for c in candidates for p in REQUIRED_PATHS[c])})"
            )
        else:
            mix[chosen] = ALTERNATIVE_WEIGHTS[share]
    if not mix:
        return None, notes
    return Plan(scenario, mix, notes), notes
