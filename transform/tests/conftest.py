"""The end-to-end fixtures of the tap's tests, shared with the dbt project's tests.

Meltano with every plugin installed, and a throwaway PostgreSQL cluster.
"""

from tests.e2e.conftest import meltano, postgres

__all__ = ["meltano", "postgres"]
