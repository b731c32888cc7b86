"""The end-to-end fixtures of the tap's tests (Meltano with every plugin, a throwaway
PostgreSQL cluster), shared with the dbt project's tests."""

from tests.e2e.conftest import meltano, postgres

__all__ = ["meltano", "postgres"]
