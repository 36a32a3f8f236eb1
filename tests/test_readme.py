"""README and docs/ say what the code does: the tour's commands run and print what README
shows, every other `nas` command line in them parses against the real CLI, every Python
import in them resolves, and every page is linked."""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from nas.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
SHARED_DATA = ROOT.parent / "shared" / "data"
#: Where README's tour pretends to run (its output shows this instead of a temporary folder).
SHOWN_ROOT = "/home/you/nas"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(path: Path, lang: str) -> list[str]:
    return [body for kind, body in _FENCE.findall(path.read_text()) if kind == lang]


@dataclass
class Step:
    argv: list[str]
    shown: list[str]  # output lines README shows ("..." marks lines it leaves out)


def tour() -> list[Step]:
    steps: list[Step] = []
    for body in blocks(README, "console"):
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append(Step(shlex.split(line[2:]), []))
            else:
                assert steps, f"output before any command in README: {line!r}"
                steps[-1].shown.append(line)
    return steps


def normalise(line: str) -> str:
    """Leave out what differs from run to run or machine to machine: durations, padding
    of columns, the length of a table's rules."""
    line = re.sub(r"\b\d+(\.\d+)? s\b", "N s", line)
    line = re.sub(r"-{3,}", "---", line)
    return " ".join(line.split())


def test_readme_is_a_short_page():
    assert len(README.read_text().splitlines()) <= 250


def test_the_tour_has_the_commands_a_newcomer_needs():
    commands = {tuple(s.argv[:2]) for s in tour()}
    assert {("nas", "search"), ("nas", "report"), ("nas", "export")} <= commands
    assert all(s.argv[0] == "nas" and s.shown for s in tour())


@pytest.mark.slow
def test_the_tour_runs_and_prints_what_readme_shows(tmp_path, monkeypatch):
    if not (SHARED_DATA / "nasbench201").is_dir():
        pytest.skip(f"NAS-Bench-201 tables not found in {SHARED_DATA} (CI provides ../shared/data)")
    monkeypatch.chdir(tmp_path)  # the tour's studies, exports and databases land here
    runner = CliRunner()
    for step in tour():
        argv = [a.replace("../shared/data", str(SHARED_DATA)) for a in step.argv[1:]]
        result = runner.invoke(app, argv)
        command = " ".join(step.argv)
        assert result.exit_code == 0, f"{command}\n{result.output}"
        out = result.output
        for real in {str(tmp_path.resolve()), str(tmp_path), str(ROOT)}:
            out = out.replace(real, SHOWN_ROOT)
        printed = {normalise(line) for line in out.splitlines()}
        for line in step.shown:
            if line.strip() != "...":
                assert normalise(line) in printed, f"{command}: not printed: {line!r}\n{out}"


class NotACommandLine(Exception):
    pass


def _parse(argv: list[str]) -> None:
    """Check ``nas ARGV`` against the real command line, running nothing: the command
    exists, its options exist, required arguments are there, values convert."""
    command = typer.main.get_command(app)
    name = "nas"
    while hasattr(command, "list_commands"):  # a group: descend to the subcommand
        sub = command.get_command(command.context_class(command), argv[0]) if argv else None
        if sub is None:
            raise NotACommandLine(f"{name}: no command {argv[:1]}")
        name, argv, command = f"{name} {argv[0]}", argv[1:], sub
    try:
        command.make_context(name, list(argv))
    except Exception as err:  # click's usage errors (typer may vendor its own click)
        raise NotACommandLine(f"{name}: {err}") from err


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for path in [README, *DOCS]:
        for body in blocks(path, "bash"):
            for line in body.splitlines():
                if line.startswith("nas "):
                    found.append((path.relative_to(ROOT).as_posix(), line))
    return found


@pytest.mark.parametrize(("page", "line"), documented_commands())
def test_documented_command_lines_parse(page, line):
    _parse(shlex.split(line, comments=True)[1:])


def test_the_parse_check_can_fail():
    for argv in (["search", "--trails", "4"], ["space", "shw"], ["export", "mobilenet_v2"]):
        with pytest.raises(NotACommandLine):
            _parse(argv)


def test_python_imports_in_docs_resolve():
    imports = 0
    for path in [README, *DOCS]:
        for body in blocks(path, "python"):
            for node in ast.parse(body).body:
                if isinstance(node, ast.Import | ast.ImportFrom):
                    exec(compile(ast.Module([node], []), str(path), "exec"), {})
                    imports += 1
    assert imports


def test_every_docs_page_is_linked_from_readme_and_every_link_resolves():
    readme = README.read_text()
    for page in DOCS:
        assert f"(docs/{page.name})" in readme, f"README does not link {page.name}"
    for path in [README, *DOCS]:
        for target in re.findall(r"\]\(([^)#]+)\)", path.read_text()):
            if "://" not in target:
                assert (path.parent / target).exists(), f"{path.name}: broken link {target}"
