"""Members: registration (idempotent on the identity), profile, lookup."""
