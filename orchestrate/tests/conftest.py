"""The e2e fixtures of the tap's suite: real Meltano, a throwaway PostgreSQL."""

from tests.e2e.conftest import meltano, postgres

__all__ = ["meltano", "postgres"]
