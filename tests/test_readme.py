"""The README tells the truth: its settings table is what `--about` prints."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def load_updater():
    return load_script("update_readme")


def test_readme_settings_table_matches_about() -> None:
    updater = load_updater()
    readme = (ROOT / "README.md").read_text()
    table = updater.settings_table()
    assert "| window_days |" in table
    assert updater.render(readme, table) == readme, "run scripts/update_readme.py"


def test_readme_states_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme
    assert "make test" in readme


def test_readme_lists_the_date_matrix_as_it_runs() -> None:
    """Each entry of scripts/test_matrix.py is a row of the README's table, and no other."""
    readme = (ROOT / "README.md").read_text()
    matrix = load_script("test_matrix").MATRIX
    rows = [line for line in readme.splitlines() if line.startswith("| `") and "| 20" in line]
    assert len(rows) == len(matrix)
    for entry, row in zip(matrix, rows, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[0] == f"`{entry.name}`"
        assert cells[1].startswith(entry.instant)
        assert cells[2:] == [entry.tz, str(entry.seed)]


def test_the_clock_mover_moves_a_child_process_clock() -> None:
    """The mechanism `make matrix` rests on: a child started with the entry's environment.

    Without its `@anchor` the clock starts at the instant when the child starts, so the test
    holds whatever clock this process itself has (it runs inside the matrix too).
    """
    matrix = load_script("test_matrix")
    entry = matrix.MATRIX[2]  # the leap day
    probe = "import datetime as dt; print(dt.datetime.now(dt.timezone.utc).isoformat())"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**matrix.environment(entry), "TAP_CALVEN_TEST_CLOCK": entry.instant},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("2028-02-29T12:0"), out
