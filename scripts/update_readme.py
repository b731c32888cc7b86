"""Regenerate the README's settings table from `tap-calven --about --format=markdown`.

Run after changing a setting: `.venv/bin/python scripts/update_readme.py`.
tests/test_readme.py fails while the README and the tap disagree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_table() -> str:
    """The settings table exactly as the installed tap prints it."""
    tap = Path(sys.executable).with_name("tap-calven")
    about = subprocess.run(
        [str(tap), "--about", "--format=markdown"], capture_output=True, text=True, check=True
    ).stdout
    lines = about.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| Setting"))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return "\n".join(table)


def render(readme: str, table: str) -> str:
    """The README with the text between the markers replaced by the table."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main() -> None:
    """Rewrite README.md in place."""
    README.write_text(render(README.read_text(), settings_table()))


if __name__ == "__main__":
    main()
