"""Weekly and monthly points contests: scores kept with each earning, ranks, settlement of closed periods with
prizes awarded exactly once, and operators' exclusions."""
