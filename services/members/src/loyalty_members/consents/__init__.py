"""Consents per purpose with the policy version, kept as a history that is never rewritten (PIPL)."""
