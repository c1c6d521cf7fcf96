"""Operators' manual corrections of a member's points."""
