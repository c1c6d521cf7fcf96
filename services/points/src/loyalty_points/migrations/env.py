"""Alembic environment of the points service: its own schema only."""

from alembic import context

from loyalty_common.migrations import run_env
from loyalty_points.schema import SCHEMA, metadata

run_env(context, metadata, SCHEMA)
