"""`make bench`: the five benchmark scenarios, in one invocation, as one table.

Every scenario runs the real `tap-calven` command in a child process against a sandbox
served from this process, so the tap never shares a GIL with the server. Wall time is
measured from spawn to exit (start-up included), peak RSS and CPU time come from the
child's own rusage (`os.wait4`). See benchmarks/README.md for what each scenario shows.

    python -m benchmarks.run                # everything (a few minutes)
    python -m benchmarks.run --only B1,B3   # some scenarios
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, Sandbox

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TAP = BIN / "tap-calven"
MELTANO = REPO / ".venv-meltano" / "bin" / "meltano"
STREAM = "bookings_attendance"
# The tap's progress line per request: "<stream>: <window ...>: <n> records in <s> s".
PROGRESS = re.compile(r"\| (?P<stream>\w+): [^|]*?: (?P<count>\d+) records in [\d.]+ s")

B1_USERS, B1_DAYS = 2000, 90
B2_USERS, B2_DAYS, B2_LATENCY_MS = 100, 730, 300
B2_CONCURRENCY = (1, 4, 8)
B3_USERS, B3_DAYS = 5000, 90
B3_CONCURRENCY = (1, 4)
CHILD_TIMEOUT = 600.0


def say(text: str) -> None:
    """Progress on stderr, so that stdout holds only the table."""
    print(f"bench: {text}", file=sys.stderr, flush=True)


# --- running a child --------------------------------------------------------------------


@dataclass
class Child:
    """What one child process cost: wall and CPU seconds, peak RSS, and its stderr."""

    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int
    stderr: str

    def records(self, stream: str | None = None) -> int:
        """Records the tap reported in its per-request progress lines."""
        return sum(
            int(m["count"])
            for m in PROGRESS.finditer(self.stderr)
            if stream is None or m["stream"] == stream
        )


# Runs the command and reports its rusage. A child's ru_maxrss starts at the RSS of the
# process that exec'd it, so the tap is started from this small process, never from the
# runner, whose sandbox holds hundreds of MB of JSON.
_MEASURE = """
import json, os, subprocess, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = subprocess.Popen(command).pid
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(report, "w") as out:
    json.dump({"seconds": seconds, "returncode": os.waitstatus_to_exitcode(status),
               "maxrss_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}, out)
"""


def run_child(
    command: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Child:
    """Run a command with stdout to /dev/null: wall and CPU time, peak RSS, stderr."""
    with (
        tempfile.TemporaryDirectory(prefix="measure-") as scratch,
        tempfile.TemporaryFile() as err,
        Path(os.devnull).open("wb") as null,
    ):
        report = Path(scratch) / "rusage.json"
        wrapper = [sys.executable, "-c", _MEASURE, str(report), *command]
        proc = subprocess.Popen(
            wrapper, stdout=null, stderr=err, env=env, cwd=cwd, start_new_session=True
        )
        try:
            proc.wait(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        if proc.returncode != 0 or not report.exists():
            raise SystemExit(f"bench: {command[0]} did not finish:\n{_tail(stderr)}")
        usage = json.loads(report.read_text())
    if usage["returncode"] != 0:
        raise SystemExit(f"bench: {command[0]} exited {usage['returncode']}:\n{_tail(stderr)}")
    return Child(
        seconds=float(usage["seconds"]),
        cpu_seconds=float(usage["cpu"]),
        peak_rss_mb=int(usage["maxrss_kb"]) / 1024,  # kilobytes on Linux
        returncode=int(usage["returncode"]),
        stderr=stderr,
    )


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-15:])


def median_child(children: list[Child]) -> Child:
    """The run with the median wall time."""
    return sorted(children, key=lambda c: c.seconds)[len(children) // 2]


# --- the tap's inputs -------------------------------------------------------------------


@dataclass
class TapFiles:
    """A config (and optionally a catalog) for one tap run, in a scratch directory."""

    workdir: Path
    config: dict[str, Any]
    streams: tuple[str, ...] | None = None  # None: every stream (no catalog)
    _catalog: Path | None = field(default=None, init=False)

    def command(self, **overrides: Any) -> list[str]:
        """The tap's command line with these settings overriding the config."""
        config = {**self.config, **overrides}
        path = self.workdir / f"config-{abs(hash(json.dumps(config, sort_keys=True)))}.json"
        path.write_text(json.dumps(config))
        command = [str(TAP), "--config", str(path)]
        if self.streams is not None:
            command += ["--catalog", str(self.catalog(path))]
        return command

    def catalog(self, config_path: Path) -> Path:
        """The discovered catalog with only `streams` selected (made once)."""
        if self._catalog is None:
            found = subprocess.run(
                [str(TAP), "--config", str(config_path), "--discover"],
                capture_output=True,
                check=True,
                text=True,
            )
            catalog = json.loads(found.stdout)
            for entry in catalog["streams"]:
                for item in entry["metadata"]:
                    if item["breadcrumb"] == []:
                        item["metadata"]["selected"] = entry["tap_stream_id"] in (
                            self.streams or ()
                        )
            self._catalog = self.workdir / "catalog.json"
            self._catalog.write_text(json.dumps(catalog))
        return self._catalog


def tap_config(sandbox: Sandbox, days: int, **settings: Any) -> dict[str, Any]:
    """Read the last `days` days up to the sandbox's today, 30-day windows."""
    return {
        "api_url": sandbox.url,
        "api_key": DEFAULT_API_KEY,
        "api_secret": DEFAULT_API_SECRET,
        "start_date": (sandbox.today - dt.timedelta(days=days - 1)).isoformat(),
        "end_date": sandbox.today.isoformat(),
        "window_days": 30,
        **settings,
    }


def start_sandbox(seed: int, users: int, days: int) -> Sandbox:
    """A tenant with `days` of history and no future, generated before any timing."""
    say(f"sandbox: {users} users, {days} days of history (generating)")
    sandbox = Sandbox(seed=seed, users=users, locations=3, past_days=days, future_days=0)
    sandbox.warm()
    return sandbox.start()


# --- the table --------------------------------------------------------------------------

HEADERS = ("Scenario", "Run", "Wall s", "Records", "Records/s", "Peak RSS MB", "Figure", "Target")


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    run: str
    seconds: float | None = None
    records: int | None = None
    rss_mb: float | None = None
    figure: str = ""
    target: str = ""

    def cells(self) -> tuple[str, ...]:
        """The row as table cells."""
        rate = (
            f"{self.records / self.seconds:,.0f}"
            if self.records is not None and self.seconds
            else ""
        )
        return (
            self.scenario,
            self.run,
            "" if self.seconds is None else f"{self.seconds:.2f}",
            "" if self.records is None else f"{self.records:,}",
            rate,
            "" if self.rss_mb is None else f"{self.rss_mb:.0f}",
            self.figure,
            self.target,
        )


def met(ok: bool) -> str:
    """How a target reads in the table."""
    return "met" if ok else "**MISSED**"


def print_table(rows: list[Row], elapsed: float) -> None:
    """The figures as one markdown table, with the machine it ran on."""
    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print()
    print(
        f"tap-calven benchmarks, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC: "
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; `make bench` took {elapsed / 60:.1f} min."
    )
    print()
    table = [HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(HEADERS))]
    for n, cells in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


# --- the scenarios ----------------------------------------------------------------------


def b1_data(workdir: Path) -> tuple[Sandbox, TapFiles]:
    """B1's tenant (B4 loads the same data) and the tap's files to read it."""
    sandbox = start_sandbox(seed=1, users=B1_USERS, days=B1_DAYS)
    return sandbox, TapFiles(workdir, tap_config(sandbox, B1_DAYS), streams=(STREAM,))


def b1_throughput(sandbox: Sandbox, files: TapFiles, repeat: int, rows: list[Row]) -> None:
    """B1: the tap's records/s beside the raw baseline's, runs interleaved."""
    expected = len(sandbox.records(STREAM, sandbox.today - dt.timedelta(days=B1_DAYS - 1)))
    baseline = [
        sys.executable,
        "-m",
        "benchmarks.baseline",
        "--api-url",
        sandbox.url,
        "--stream",
        STREAM,
        "--start",
        files.config["start_date"],
        "--end",
        files.config["end_date"],
    ]
    runs: dict[str, list[Child]] = {"baseline": [], "tap-4": [], "tap-1": []}
    commands = {
        "baseline": baseline,
        "tap-4": files.command(max_concurrent_requests=4),
        "tap-1": files.command(max_concurrent_requests=1),
    }
    run_child(commands["tap-4"], cwd=REPO)  # warm-up: caches, the first token, the sandbox
    for n in range(repeat):
        say(f"B1 round {n + 1} of {repeat}: baseline, tap (concurrency 4), tap (concurrency 1)")
        for name, command in commands.items():
            runs[name].append(run_child(command, cwd=REPO))
    for name, children in runs.items():
        for child in children:
            got = (
                int(re.findall(r"records (\d+)", child.stderr)[-1])
                if name == "baseline"
                else child.records(STREAM)
            )
            if got != expected:
                raise SystemExit(f"bench: B1 {name} emitted {got} records, expected {expected}")
    base, tap4, tap1 = (median_child(runs[name]) for name in ("baseline", "tap-4", "tap-1"))
    per_s = {name: expected / median_child(c).seconds for name, c in runs.items()}
    label = f"{B1_USERS:,} users x {B1_DAYS} days, median of {repeat}"
    rows.append(
        Row(
            "B1 throughput",
            f"raw baseline: requests + json, sequential ({label})",
            base.seconds,
            expected,
            base.peak_rss_mb,
        )
    )
    for name, child, concurrency in (("tap-4", tap4, 4), ("tap-1", tap1, 1)):
        ratio = per_s[name] / per_s["baseline"]
        rows.append(
            Row(
                "B1 throughput",
                f"tap-calven, max_concurrent_requests {concurrency}",
                child.seconds,
                expected,
                child.peak_rss_mb,
                f"{ratio:.2f} x baseline",
                f">= 0.5 x: {met(ratio >= 0.5)}" if concurrency == 4 else "",
            )
        )


# B4's loader paths: (label, target, tap settings, target settings), as environment variables.
_BATCH_JSONL = {"encoding": {"format": "jsonl", "compression": "gzip"}}
PARQUET = "BATCH parquet, use_copy"
B4_PATHS: tuple[tuple[str, str, dict[str, Any], dict[str, str]], ...] = (
    ("RECORD", "target-duckdb", {}, {}),
    ("RECORD", "target-postgres", {}, {}),
    ("RECORD, use_copy", "target-postgres", {}, {"TARGET_POSTGRES_USE_COPY": "true"}),
    ("BATCH jsonl.gz", "target-postgres", _BATCH_JSONL, {}),
    (
        "BATCH jsonl.gz, use_copy",
        "target-postgres",
        _BATCH_JSONL,
        {"TARGET_POSTGRES_USE_COPY": "true"},
    ),
    (
        "BATCH jsonl, use_copy",
        "target-postgres",
        {"encoding": {"format": "jsonl", "compression": "none"}},
        {"TARGET_POSTGRES_USE_COPY": "true"},
    ),
    (
        PARQUET,
        "target-postgres",
        {"encoding": {"format": "parquet", "compression": "none"}},
        {"TARGET_POSTGRES_USE_COPY": "true"},
    ),
)
# Parquet files need pyarrow in the tap's and the target's venvs (neither brings it).
PARQUET_VENVS = (
    REPO / ".meltano" / "extractors" / "tap-calven" / "venv" / "bin" / "python",
    REPO / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin" / "python",
)


def has_pyarrow(python: Path) -> bool:
    """True when this venv can import pyarrow."""
    found = subprocess.run([str(python), "-c", "import pyarrow"], capture_output=True, check=False)
    return found.returncode == 0


def meltano_env() -> dict[str, str]:
    """Meltano's environment for a benchmark run: no usage statistics."""
    return {**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}


def meltano_install(plugins: Sequence[str]) -> bool:
    """`meltano install` of the plugins (cached after the first time); False if it failed."""
    say(f"meltano install {' '.join(plugins)} (cached after the first time)")
    installed = subprocess.run(
        [str(MELTANO), "install", *plugins],
        cwd=REPO,
        env=meltano_env(),
        capture_output=True,
        check=False,
    )
    return installed.returncode == 0


def b4_tap_alone(files: TapFiles, batches: Path, rows: list[Row]) -> None:
    """The tap's own cost in BATCH mode beside RECORD mode: the files are its output."""
    batch_config = {**_BATCH_JSONL, "storage": {"root": batches.as_uri(), "prefix": "alone-"}}
    record = run_child(files.command(), cwd=REPO)
    batch = run_child(files.command(batch_config=batch_config), cwd=REPO)
    if record.records(STREAM) != batch.records(STREAM):
        raise SystemExit("bench: B4 the tap emitted different counts in RECORD and BATCH mode")
    ratio = (record.seconds / batch.seconds) if batch.seconds else 0.0
    for label, child, figure in (
        ("RECORD messages to stdout", record, ""),
        ("BATCH jsonl.gz files", batch, f"{ratio:.2f} x the records/s of RECORD mode"),
    ):
        rows.append(
            Row(
                "B4 end to end",
                f"tap-calven alone, {label}",
                child.seconds,
                child.records(STREAM),
                child.peak_rss_mb,
                figure,
            )
        )


def b4_end_to_end(workdir: Path, sandbox: Sandbox, files: TapFiles, rows: list[Row]) -> None:
    """B4: `meltano run tap-calven <target>` on B1's data, by every loader path."""
    if not MELTANO.exists():
        rows.append(Row("B4 end to end", "meltano run", figure="n/a (Meltano not installed)"))
        return
    if not meltano_install(["tap-calven", "target-duckdb", "target-postgres"]):
        rows.append(Row("B4 end to end", "meltano run", figure="n/a (meltano install failed)"))
        return
    from tests.e2e.pgcluster import ClusterError, throwaway_cluster

    batches = workdir / "batches"
    batches.mkdir()
    b4_tap_alone(files, batches, rows)
    tap_env = {
        "TAP_CALVEN_API_URL": sandbox.url,
        "TAP_CALVEN_API_KEY": DEFAULT_API_KEY,
        "TAP_CALVEN_API_SECRET": DEFAULT_API_SECRET,
        "TAP_CALVEN_START_DATE": files.config["start_date"],
        "TAP_CALVEN_END_DATE": files.config["end_date"],
        "TAP_CALVEN__SELECT": json.dumps([f"{STREAM}.*"]),
    }
    try:
        with throwaway_cluster() as postgres:
            for n, (label, target, tap_settings, target_env) in enumerate(B4_PATHS):
                run = f"meltano run tap-calven {target}, {label}"
                if label == PARQUET and not all(has_pyarrow(p) for p in PARQUET_VENVS):
                    rows.append(Row("B4 end to end", run, figure="n/a (no pyarrow, README)"))
                    continue
                schema = f"bench_{n}"
                env = {**meltano_env(), **tap_env, **target_env}
                if tap_settings:
                    storage = {"root": batches.as_uri(), "prefix": f"{schema}-"}
                    env["TAP_CALVEN_BATCH_CONFIG"] = json.dumps(
                        {**tap_settings, "storage": storage}
                    )
                if target == "target-postgres":
                    env.update(postgres.target_env(schema))
                else:
                    env["TARGET_DUCKDB_FILEPATH"] = str(workdir / f"{schema}.duckdb")
                    env["TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA"] = schema
                say(f"B4: meltano run tap-calven {target} ({label})")
                command = [str(MELTANO), "--environment", "sandbox", "run", "--full-refresh"]
                command += ["--state-id-suffix", f"bench-{schema}", "tap-calven", target]
                child = run_child(command, env=env, cwd=REPO)
                loaded = count_rows(workdir, postgres.dsn(), target, schema)
                rows.append(
                    Row(
                        "B4 end to end",
                        run,
                        child.seconds,
                        loaded,
                        child.peak_rss_mb,
                        f"{child.cpu_seconds:.0f} s CPU (Meltano, tap, target)",
                        f"<= 250 MB: {met(child.peak_rss_mb <= 250)}",
                    )
                )
    except ClusterError as exc:
        rows.append(Row("B4 end to end", "target-postgres", figure=f"n/a ({exc})"))


def count_rows(workdir: Path, dsn: str, target: str, schema: str) -> int:
    """Rows the run left in the warehouse."""
    if target == "target-duckdb":
        import duckdb  # the tap's dev venv has it (tests read DuckDB too)

        with duckdb.connect(str(workdir / f"{schema}.duckdb"), read_only=True) as conn:
            found = conn.execute(f"SELECT count(*) FROM {schema}.{schema}.{STREAM}").fetchone()
    else:
        import psycopg

        with psycopg.connect(dsn) as conn:
            found = conn.execute(f"SELECT count(*) FROM {schema}.{STREAM}").fetchone()
    return int(found[0]) if found else 0


def b2_latency(workdir: Path, rows: list[Row]) -> None:
    """B2: every stream, two years, 300 ms per request, at concurrency 1, 4 and 8."""
    sandbox = start_sandbox(seed=2, users=B2_USERS, days=B2_DAYS)
    try:
        files = TapFiles(workdir, tap_config(sandbox, B2_DAYS))
        sandbox.latency_ms = B2_LATENCY_MS
        walls: dict[int, float] = {}
        counts: set[int] = set()
        for concurrency in B2_CONCURRENCY:
            say(f"B2: every stream, {B2_LATENCY_MS} ms latency, concurrency {concurrency}")
            sandbox.clear_requests()
            child = run_child(files.command(max_concurrent_requests=concurrency), cwd=REPO)
            requests_made = len(sandbox.requests)
            counts.add(child.records())
            walls[concurrency] = child.seconds
            bound = requests_made * B2_LATENCY_MS / 1000 / concurrency
            figure = (
                f"{requests_made} requests; lower bound {bound:.2f} s "
                f"({child.seconds / bound:.2f} x)"
            )
            target = ""
            if concurrency == 4:
                speedup = walls[1] / child.seconds
                figure += f"; {speedup:.2f} x faster than 1"
                target = (
                    f">= 3 x faster: {met(speedup >= 3)}; "
                    f"<= 1.5 x bound: {met(child.seconds <= 1.5 * bound)}"
                )
            rows.append(
                Row(
                    "B2 latency",
                    f"7 streams, 2 years, {B2_LATENCY_MS} ms/request, concurrency {concurrency}",
                    child.seconds,
                    child.records(),
                    child.peak_rss_mb,
                    figure,
                    target,
                )
            )
        if len(counts) != 1:
            raise SystemExit(f"bench: B2 runs emitted different record counts: {sorted(counts)}")
    finally:
        sandbox.stop()


def b3_memory(workdir: Path, rows: list[Row]) -> None:
    """B3: three 30-day windows of 5,000 users: peak RSS at concurrency 1 and 4."""
    sandbox = start_sandbox(seed=3, users=B3_USERS, days=B3_DAYS)
    try:
        files = TapFiles(workdir, tap_config(sandbox, B3_DAYS), streams=(STREAM,))
        counts: set[int] = set()
        for concurrency in B3_CONCURRENCY:
            say(f"B3: {B3_USERS} users, three 30-day windows, concurrency {concurrency}")
            child = run_child(files.command(max_concurrent_requests=concurrency), cwd=REPO)
            counts.add(child.records(STREAM))
            limit = 150 if concurrency == 1 else 300
            rows.append(
                Row(
                    "B3 memory",
                    f"{B3_USERS:,} users, 3 x 30-day windows, concurrency {concurrency}",
                    child.seconds,
                    child.records(STREAM),
                    child.peak_rss_mb,
                    f"peak RSS {child.peak_rss_mb:.0f} MB",
                    f"<= {limit} MB: {met(child.peak_rss_mb <= limit)}",
                )
            )
        if len(counts) != 1:
            raise SystemExit(f"bench: B3 runs emitted different record counts: {sorted(counts)}")
    finally:
        sandbox.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios asked for and print the table."""
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__)
    parser.add_argument("--only", default="B1,B2,B3,B4,B5", help="scenarios, e.g. B1,B3")
    parser.add_argument("--repeat", type=int, default=3, help="B1 rounds (median reported)")
    args = parser.parse_args(argv)
    only = {name.strip().upper() for name in args.only.split(",") if name.strip()}
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tap-calven-bench-") as scratch:
        workdir = Path(scratch)
        if only & {"B1", "B4"}:
            sandbox, files = b1_data(workdir)
            try:
                if "B1" in only:
                    b1_throughput(sandbox, files, max(1, args.repeat), rows)
                if "B4" in only:
                    b4_end_to_end(workdir, sandbox, files, rows)
            finally:
                sandbox.stop()
        if "B2" in only:
            b2_latency(workdir, rows)
        if "B3" in only:
            b3_memory(workdir, rows)
        if "B5" in only:
            from benchmarks.scale_out import b5_scale_out

            b5_scale_out(workdir, rows)
    print_table(rows, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
