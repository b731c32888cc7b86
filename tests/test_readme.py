"""The README tells the truth: its settings table is what `--about` prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_updater():
    spec = importlib.util.spec_from_file_location(
        "update_readme", ROOT / "scripts" / "update_readme.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
