"""Operators' views of the whole ledger: the invariant check and the programme's figures."""
