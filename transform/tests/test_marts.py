"""The dbt project end to end: sandbox -> `meltano run tap-calven <target> dbt-<target>:build`
-> mart figures compared with the same figures computed from the sandbox's own records.

Once into DuckDB (then the report, whose tables must match the marts) and once into
PostgreSQL; `dbt build` runs every model and data test, so a failing dbt test fails here.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
import truth  # transform/tests/truth.py

from tap_calven.sandbox import Sandbox
from tests.conftest import TODAY
from tests.e2e.conftest import Meltano, Postgres, tap_env
from tests.e2e.helpers import run_id

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "transform" / "report" / "report.py"
MARTS = "analytics_marts"
Query = Callable[[str], list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def tenant() -> Iterator[Sandbox]:
    sb = Sandbox(seed=21, users=30, locations=2, past_days=45, future_days=7, today=TODAY).start()
    try:
        yield sb
    finally:
        sb.stop()


def start(sb: Sandbox) -> dt.date:
    return sb.date_range("bookings_attendance")[0]


def bookings(sb: Sandbox) -> list[dict[str, Any]]:
    return sb.records("bookings_attendance", start(sb), sb.today)


def load_and_build(meltano: Meltano, sb: Sandbox, target: str, env: dict[str, str]) -> str:
    full = {**tap_env(sb, TAP_CALVEN_START_DATE=start(sb).isoformat()), **env}
    args = ("--environment", "sandbox", "run", "--state-id-suffix", run_id())
    run = meltano(*args, "tap-calven", target, f"dbt-{target.split('-')[1]}:build", env=full)
    done = re.search(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+)", run.output)
    assert done, "dbt build printed no summary"
    assert int(done[1]) > 50, done[0]
    assert done[3] == "0", done[0]
    return run.output


def check_marts(sb: Sandbox, query: Query) -> None:
    served = bookings(sb)
    location = truth.busiest(truth.office_of(r) for r in served)
    expected = truth.daily_no_shows(served, location)
    got = dict(
        query(
            f"select day, no_shows from {MARTS}.mart_location_daily_attendance "
            f"where location_id = '{location}'"
        )
    )
    assert len(expected) >= 30, "fewer than 30 days: the comparison would be thin"
    assert sum(expected.values()) > 0, "no no-shows at all: the comparison would prove nothing"
    assert {to_date(d): n for d, n in got.items()} == expected

    desk = truth.busiest(truth.lower(r.get("bookingPlaceId")) for r in served)
    weeks = truth.desk_weeks(served, desk)
    got_weeks = {
        to_date(w): (b, a, u)
        for w, b, a, u in query(
            f"select week_start, booked_days, attended_days, utilisation "
            f"from {MARTS}.mart_desk_weekly_utilisation "
            f"where desk_id = '{desk}' and booked_days > 0"
        )
    }
    assert {w: (b, a) for w, (b, a, _) in got_weeks.items()} == weeks
    assert all(abs(u - a / 5) < 1e-9 for _, a, u in got_weeks.values())

    user = truth.busiest(truth.lower(r["userId"]) for r in served if r.get("bookingPlaceId"))
    got_user = {
        to_date(w): (o, b, a, n)
        for w, o, b, a, n in query(
            f"select week_start, office_plan_days, booked_days, attended_days, no_show_days "
            f"from {MARTS}.mart_user_weekly_booking_behaviour where user_id = '{user}'"
        )
    }
    assert got_user == truth.user_weeks(served, user)


def to_date(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def test_duckdb_marts_match_the_sandbox_and_the_report_matches_the_marts(
    meltano: Meltano, tenant: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "warehouse.duckdb"
    env = {
        "TARGET_DUCKDB_FILEPATH": str(path),
        "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "calven",
        "DBT_DUCKDB_PATH": str(path),
    }
    load_and_build(meltano, tenant, "target-duckdb", env)
    with duckdb.connect(str(path), read_only=True) as conn:
        check_marts(tenant, lambda sql: conn.execute(sql).fetchall())

    out = tmp_path / "report.html"
    subprocess.run(
        [sys.executable, str(REPORT), "--database", str(path), "--out", str(out)], check=True
    )
    page = out.read_text(encoding="utf-8")
    assert page.count("<svg") == 4
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched
    tables = read_tables(page)
    with duckdb.connect(str(path), read_only=True) as conn:
        per_location = conn.execute(
            f"select coalesce(location_name, location_id), sum(attended), sum(no_shows) "
            f"from {MARTS}.mart_location_daily_attendance group by 1 order by 1"
        ).fetchall()
        first, last = conn.execute(
            f"select min(day), max(day) from {MARTS}.mart_location_daily_attendance "
            "where confirmed + unconfirmed + walk_ins + no_shows > 0"
        ).fetchone() or (None, None)
        best = conn.execute(
            f"select desk_id, 100.0 * sum(attended_days) / sum(working_days) "
            f"from {MARTS}.mart_desk_weekly_utilisation group by desk_id "
            "order by 2 desc, desk_id limit 1"
        ).fetchone()
    assert f"<b>{first}</b> to <b>{last}</b>" in page
    assert [(r[0], int(r[2]), int(r[3])) for r in tables["occupancy"]] == [
        (name, int(a), int(n)) for name, a, n in per_location
    ]
    assert best is not None
    assert abs(float(tables["desks"][0][4]) - best[1]) < 0.051
    assert sum(int(r[1]) for r in tables["weekdays"]) == (last - first).days + 1 - sum(
        1 for n in range((last - first).days + 1) if (first + dt.timedelta(days=n)).weekday() >= 5
    )


def test_postgres_marts_match_the_sandbox(
    meltano: Meltano, tenant: Sandbox, postgres: Postgres
) -> None:
    env = {
        **postgres.target_env("calven_dbt"),
        "DBT_POSTGRES_HOST": postgres.host,
        "DBT_POSTGRES_PORT": str(postgres.port),
        "DBT_POSTGRES_USER": postgres.user,
        "DBT_POSTGRES_DBNAME": postgres.database,
        "DBT_POSTGRES_SCHEMA": "analytics",
        "DBT_POSTGRES_SOURCE_SCHEMA": "calven_dbt",  # Meltano: <PLUGIN>_<SETTING>
    }
    load_and_build(meltano, tenant, "target-postgres", env)
    with psycopg.connect(postgres.dsn()) as conn, conn.cursor() as cur:

        def query(sql: str) -> list[tuple[Any, ...]]:
            cur.execute(sql)  # type: ignore[arg-type]
            return cur.fetchall()

        check_marts(tenant, query)


class _Tables(HTMLParser):
    """The report's tables: id -> rows of cell texts (header row left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def read_tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables
