"""Render the workplace report: one self-contained HTML file from the DuckDB marts.

`make report` runs it after `meltano run tap-calven target-duckdb dbt-duckdb:build`:

    python transform/report/report.py --database output/warehouse.duckdb --out output/report.html

Charts are inline SVG drawn by matplotlib, every figure is also in a table, and nothing
is fetched from the network: the file opens offline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt

MARTS = "analytics_marts"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TOP_N = 5


@dataclass
class Section:
    """One question of the report: a chart and the table of its figures."""

    key: str
    title: str
    note: str
    svg: str
    header: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def rows(conn: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """The rows of one parameterised query."""
    return conn.execute(sql, list(params)).fetchall()


def observed_range(conn: duckdb.DuckDBPyConnection) -> tuple[dt.date, dt.date]:
    """First and last day with any attendance recorded (future days have plans only)."""
    first, last = rows(
        conn,
        f"select min(day), max(day) from {MARTS}.mart_location_daily_attendance "
        "where confirmed + unconfirmed + walk_ins + no_shows > 0",
    )[0]
    if first is None:
        raise SystemExit("report: the marts hold no attendance yet; run dbt build after a load")
    return first, last


def svg_of(figure: Any) -> str:
    """A figure as inline SVG markup (no XML prolog), then closed."""
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = out.getvalue()
    return text[text.index("<svg") :]


def occupancy(conn: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> Section:
    """Occupancy: how full each office is, day by day."""
    daily = rows(
        conn,
        f"select coalesce(location_name, location_id), day, attended "
        f"from {MARTS}.mart_location_daily_attendance where day between ? and ? order by 1, 2",
        first,
        last,
    )
    figure, ax = plt.subplots(figsize=(9, 3.5))
    for name in sorted({r[0] for r in daily}):
        points = [(r[1], r[2]) for r in daily if r[0] == name]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=name)
    ax.set_ylabel("people attended")
    ax.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    table = rows(
        conn,
        f"select coalesce(location_name, location_id), sum(planned_office), sum(attended), "
        f"sum(no_shows), round(avg(attended), 1) "
        f"from {MARTS}.mart_location_daily_attendance where day between ? and ? "
        "group by 1 order by 1",
        first,
        last,
    )
    return Section(
        "occupancy",
        "Occupancy per location",
        "People attended (confirmed or walk-in) per day.",
        svg_of(figure),
        ("location", "planned office", "attended", "no-shows", "attended per day"),
        table,
    )


def no_show_trend(conn: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> Section:
    """The no-show rate, week by week."""
    table = rows(
        conn,
        f"select cast(date_trunc('week', day) as date) as week, sum(no_shows), "
        f"sum(confirmed + no_shows), "
        f"round(100.0 * sum(no_shows) / nullif(sum(confirmed + no_shows), 0), 1) "
        f"from {MARTS}.mart_location_daily_attendance where day between ? and ? "
        "group by 1 order by 1",
        first,
        last,
    )
    figure, ax = plt.subplots(figsize=(9, 3))
    ax.plot(
        [r[0] for r in table],
        [r[3] if r[3] is not None else float("nan") for r in table],
        marker="o",
    )
    ax.set_ylabel("no-show rate, %")
    figure.autofmt_xdate()
    return Section(
        "no_show_trend",
        "No-show rate by week",
        "No-shows / (confirmed + no-shows), all locations, by ISO week (Monday shown).",
        svg_of(figure),
        ("week", "no-shows", "confirmed + no-shows", "no-show rate %"),
        table,
    )


def desks(conn: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> Section:
    """The desks used most, and least."""
    ranked = rows(
        conn,
        f"select desk_name, desk_id, sum(attended_days), sum(working_days), "
        f"round(100.0 * sum(attended_days) / sum(working_days), 1) as pct "
        f"from {MARTS}.mart_desk_weekly_utilisation where week_start between ? and ? "
        "group by desk_name, desk_id order by pct desc, desk_name, desk_id",
        first - dt.timedelta(days=first.weekday()),
        last,
    )
    chosen = ranked[:TOP_N] + [r for r in ranked[-TOP_N:] if r not in ranked[:TOP_N]]
    figure, ax = plt.subplots(figsize=(9, 3.5))
    labels = [f"{r[0] or r[1][:8]}" for r in chosen]
    ax.barh(
        labels[::-1],
        [r[4] for r in chosen][::-1],
        color=["#2a7" if i < TOP_N else "#c55" for i in range(len(chosen))][::-1],
    )
    ax.set_xlabel("utilisation, % of working days")
    table = [(r[0], r[1], r[2], r[3], r[4]) for r in chosen]
    return Section(
        "desks",
        f"Top and bottom {TOP_N} desks by utilisation",
        "Days the booker came / working days (Monday to Friday) of the weeks loaded.",
        svg_of(figure),
        ("desk", "desk id", "attended days", "working days", "utilisation %"),
        table,
    )


def weekdays(conn: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> Section:
    """The weekdays people come in."""
    per_day = rows(
        conn,
        f"select isodow(day), day, sum(attended) from {MARTS}.mart_location_daily_attendance "
        "where day between ? and ? group by 1, 2",
        first,
        last,
    )
    table = []
    for dow in sorted({r[0] for r in per_day}):
        values = [r[2] for r in per_day if r[0] == dow]
        table.append((WEEKDAYS[dow - 1], len(values), round(sum(values) / len(values), 1)))
    figure, ax = plt.subplots(figsize=(6, 3))
    ax.bar([r[0][:3] for r in table], [r[2] for r in table])
    ax.set_ylabel("people attended per day")
    return Section(
        "weekdays",
        "Weekday pattern",
        "Average people attended per day, all locations.",
        svg_of(figure),
        ("weekday", "days", "attended per day"),
        table,
    )


def cell(value: Any) -> str:
    """One table cell's text, escaped."""
    return "" if value is None else html.escape(str(value))


def render(sections: Sequence[Section], source: str, first: dt.date, last: dt.date) -> str:
    """The whole page: the range and source first, then each section."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Calven workplace report</title><style>",
        "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}",
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px}",
        "td{text-align:right}</style></head><body>",
        "<h1>Calven workplace report</h1>",
        f"<p>Data from <b>{first}</b> to <b>{last}</b> (days with attendance recorded). "
        f"Source: the dbt marts in <code>{html.escape(source)}</code>, schema "
        f"<code>{MARTS}</code>, loaded by tap-calven. Generated "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.</p>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2><p>{html.escape(s.note)}</p>")
        parts.append(s.svg)
        parts.append(f"<table id='{s.key}'><tr>")
        parts.extend(f"<th>{html.escape(h)}</th>" for h in s.header)
        parts.append("</tr>")
        for row in s.rows:
            parts.append("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Read the marts, write the report, print where it is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, default=Path("output/warehouse.duckdb"))
    parser.add_argument("--out", type=Path, default=Path("output/report.html"))
    args = parser.parse_args(argv)
    if not args.database.exists():
        raise SystemExit(f"report: no DuckDB file at {args.database}; run `make demo` first")
    with duckdb.connect(str(args.database), read_only=True) as conn:
        first, last = observed_range(conn)
        sections = [f(conn, first, last) for f in (occupancy, no_show_trend, desks, weekdays)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(sections, args.database.name, first, last), encoding="utf-8")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
