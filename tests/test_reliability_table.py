"""README → Reliability is the table of faults: one row a fault, what the bot does, and the
tests that show it. This keeps the table honest: every test a row names exists, and every row
but the one that needs a machine crash names one. A new fault is one more row (and its test)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def reliability_rows() -> list[tuple[str, str]]:
    """Return (fault, tests column) for each row of README's reliability table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Reliability", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("Fault", "---"):
            rows.append((cells[0], cells[2]))
    return rows


def defined_tests() -> dict[str, set[str]]:
    """Return each test file's name with the test functions it defines."""
    pattern = re.compile(r"^(?:async )?def (test_\w+)", re.MULTILINE)
    return {
        path.name: set(pattern.findall(path.read_text(encoding="utf-8")))
        for path in TESTS.glob("test_*.py")
    }


def named(column: str, tests: dict[str, set[str]]) -> list[str]:
    """Return the problems with the tests a row names (`file.py::test`, `test`, `…suffix`
    of a test of the file named before it, `file.py` with the case in parentheses)."""
    problems = []
    every = set().union(*tests.values())
    file = None
    for name in re.findall(r"`([^`]+)`", column):
        if "::" in name:
            file, _, name = name.partition("::")
            if name not in tests.get(file, set()):
                problems.append(f"{file}::{name}")
        elif name.endswith(".py"):
            file = name
            if name not in tests:
                problems.append(name)
        elif name.startswith("…"):
            pool = tests.get(file, set()) if file else every
            if not any(test.endswith(name[1:]) for test in pool):
                problems.append(name)
        elif name not in every:
            problems.append(name)
    return problems


def test_every_fault_in_the_table_names_tests_that_exist() -> None:
    rows = reliability_rows()
    tests = defined_tests()
    assert len(rows) >= 15  # the table was found
    for fault, column in rows:
        if column.startswith("(not simulated"):
            continue
        assert "`" in column, f"no test named for: {fault}"
        assert named(column, tests) == [], f"{fault}: {named(column, tests)}"
