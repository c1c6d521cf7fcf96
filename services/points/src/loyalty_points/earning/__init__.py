"""Earning points for paid orders, and clawing them back when orders are refunded."""
