"""Shared library of the loyalty services: the points ledger, settings, database, errors, auth, clock, outbox."""
