"""A member's points account as members see it: balances, ledger entries and points about to expire."""
