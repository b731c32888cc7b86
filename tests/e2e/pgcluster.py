"""A throwaway PostgreSQL cluster on a free loopback port, for the e2e tests and `make bench`.

PostgreSQL refuses to run as root; as root (CI), the cluster runs as the unprivileged
`nobody` account (or the account named by CALVEN_E2E_PG_USER). It is fast and unsafe on
purpose (no fsync), and deleted when the context ends.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class ClusterError(Exception):
    """The cluster could not be created or started (the message says why)."""


@dataclass
class Postgres:
    """A running throwaway cluster: connection settings for target-postgres and psycopg."""

    host: str
    port: int
    user: str
    database: str

    def dsn(self, database: str | None = None) -> str:
        """A libpq connection string (to ``database``, or the cluster's own)."""
        name = database or self.database
        return f"host={self.host} port={self.port} user={self.user} dbname={name}"

    def target_env(self, schema: str) -> dict[str, str]:
        """target-postgres settings (Meltano environment variables) for ``schema``."""
        return {
            "TARGET_POSTGRES_HOST": self.host,
            "TARGET_POSTGRES_PORT": str(self.port),
            "TARGET_POSTGRES_USER": self.user,
            "TARGET_POSTGRES_PASSWORD": "",
            "TARGET_POSTGRES_DATABASE": self.database,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        }


def postgres_bindir() -> Path:
    """The folder of the PostgreSQL server binaries (initdb, pg_ctl), newest version first."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)

    found = [str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")]
    candidates += [Path(p) for p in sorted(found, key=version, reverse=True)]
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the PostgreSQL server "
        "package (looked at `pg_config --bindir` and /usr/lib/postgresql/*/bin)"
    )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_user(user: pwd.struct_passwd | None) -> list[str]:
    """Command prefix that drops root privileges to ``user`` (nothing when not root)."""
    if user is None:
        return []
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]


@contextmanager
def throwaway_cluster() -> Iterator[Postgres]:
    """A cluster with an empty `warehouse` database; stopped and deleted at the end."""
    bindir = postgres_bindir()
    run_as: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        run_as = pwd.getpwnam(os.environ.get("CALVEN_E2E_PG_USER", "nobody"))
    root = Path(tempfile.mkdtemp(prefix="calven-pg-"))
    data, log = root / "data", root / "server.log"
    if run_as is not None:
        os.chown(root, run_as.pw_uid, run_as.pw_gid)
    prefix = _as_user(run_as)
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "HOME": str(root)}
    port = free_port()
    started = False

    def run(*cmd: str) -> None:
        proc = subprocess.run(
            [*prefix, *cmd], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if proc.returncode != 0:
            server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise ClusterError(
                f"{Path(cmd[0]).name} failed ({proc.returncode}):\n{proc.stdout}\n"
                f"{proc.stderr}\n{server_log}"
            )

    try:
        run(
            str(bindir / "initdb"),
            "--pgdata",
            str(data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        started = True
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE warehouse")
        yield Postgres(host="127.0.0.1", port=port, user="postgres", database="warehouse")
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                env=env,
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)
