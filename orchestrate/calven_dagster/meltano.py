"""The one way Dagster talks to the tap: `meltano run` in a subprocess.

Meltano 4.4 writes a plugin's catalog and config to `<sys dir>/run/<plugin>/` and deletes
them when the run ends, so two overlapping runs of one plugin in one project break each
other ("Invalid catalog"). Each run here gets its own Meltano system directory
(`MELTANO_SYS_DIR_ROOT`) whose plugin folders are links to the project's installed venvs:
run files are private, plugins are installed once, and state stays in the shared system
database (`MELTANO_DATABASE_URI`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg

# Plugin venvs that every run shares (links); everything else in the sys dir is per run.
SHARED_DIRS = ("extractors", "loaders", "utilities", "transformers", "files")


class MeltanoError(Exception):
    """A `meltano run` that exited non-zero."""


def private_sys_dir(project: Path) -> Path:
    """A fresh Meltano system directory that links the project's installed plugins."""
    shared = project / ".meltano"
    shared.mkdir(exist_ok=True)
    runs = shared / "dagster-runs"
    runs.mkdir(exist_ok=True)
    sys_dir = Path(tempfile.mkdtemp(prefix="run-", dir=runs))
    for name in SHARED_DIRS:
        (shared / name).mkdir(exist_ok=True)
        (sys_dir / name).symlink_to(shared / name, target_is_directory=True)
    return sys_dir


def batch_config(root: Path) -> dict[str, object]:
    """The tap's `batch_config` for BATCH files of gzipped JSON lines under ``root``."""
    return {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": root.as_uri(), "prefix": "calven-"},
    }


class MeltanoResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Runs `meltano` in the project folder with a private system directory per run."""

    project_dir: str
    environment: str = "prod"
    executable: str = "meltano"

    def run(
        self,
        context: dg.AssetExecutionContext | dg.OpExecutionContext,
        tasks: Sequence[str],
        env: Mapping[str, str],
        state_id_suffix: str | None = None,
        batch_files: bool = False,
    ) -> None:
        """`meltano run [--state-id-suffix S] TASKS` with ``env``; raise if it fails.

        `batch_files`: the tap sends BATCH messages (gzipped JSON lines, the fastest load
        measured, README "Performance") whose files live in the run's private system
        directory, so they are deleted with it when the run ends.
        """
        project = Path(self.project_dir).resolve()
        args = [self.executable, "--environment", self.environment, "run"]
        if state_id_suffix:
            args += ["--state-id-suffix", state_id_suffix]
        # Dagster run ids are UUIDs: the Meltano run carries the same id.
        args += ["--run-id", context.run_id, *tasks]
        sys_dir = private_sys_dir(project)
        full_env = {**os.environ, **env, "MELTANO_SYS_DIR_ROOT": str(sys_dir)}
        if batch_files:
            (sys_dir / "batches").mkdir()
            full_env["TAP_CALVEN_BATCH_CONFIG"] = json.dumps(batch_config(sys_dir / "batches"))
        context.log.info(f"meltano {' '.join(args[1:])} (suffix {state_id_suffix or '-'})")
        try:
            proc = subprocess.run(
                args, cwd=project, env=full_env, capture_output=True, text=True, check=False
            )
        finally:
            shutil.rmtree(sys_dir, ignore_errors=True)
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        if proc.returncode != 0:
            raise MeltanoError(f"meltano run exited {proc.returncode}:\n{tail}")
        context.log.info(tail)
