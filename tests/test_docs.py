"""The documentation agrees with the program: every option a command's heading in
``docs/cli.md`` names exists on that command with the default shown, every row of
``train``'s option table names a real option and, where both give one, the same
default; every link between the pages resolves; every page whose examples can run
is run by :mod:`tests.readme_examples`."""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from jobs.cli import main
from tests.readme_examples import DOCUMENTS, ROOT, _examples

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def command(path: list[str]) -> click.Command:
    found: click.Command = main
    for name in path:
        assert isinstance(found, click.Group) and name in found.commands, f"no command {' '.join(path)}"
        found = found.commands[name]
    return found


def option(cmd: click.Command, flag: str) -> click.Option:
    for param in cmd.params:
        if isinstance(param, click.Option) and flag in param.opts + param.secondary_opts:
            return param
    raise AssertionError(f"`{cmd.name}` has no option {flag}")


def same(shown: str, param: click.Option) -> bool:
    """Whether a documented default agrees with the program's; words ("per backbone",
    "`adapter` for dlib-resnet, `dense` otherwise") describe a default worked out at
    run time and are not compared."""
    default = param.default
    if param.is_flag:
        return shown.strip() in ("off", "on") and (shown.strip() == "on") == (default is True)
    if not isinstance(default, (str, int, float)):
        return True  # none: worked out at run time
    literal = re.fullmatch(r"`?([^`\s]+)`?", shown.strip())
    if not literal:
        return True
    value = literal.group(1).replace(",", "")
    if isinstance(default, (int, float)):
        try:
            return float(value) == float(default)
        except ValueError:
            return value == "off" and not default
    return value == str(default)


def headings() -> list[tuple[list[str], str]]:
    """``(command path, the rest of the heading)`` of each `verifier ...` in cli.md,
    one per command where a heading names several (`a`, `b ...`)."""
    found = []
    for line in (DOCS / "cli.md").read_text("utf-8").splitlines():
        if not line.startswith("## `verifier "):
            continue
        for part in re.findall(r"`([^`]+)`", line):
            words = part.removeprefix("verifier ").split()
            path = [w for w in words[:2] if re.fullmatch(r"[a-z][a-z-]*", w)]
            if path and path[0] not in main.commands:  # `cluster show RUN` under a `verifier cluster` heading
                path = [found[-1][0][0], *path] if found else path
            if path:
                if isinstance(command(path[:1]), click.Group) and len(path) == 1 and "run" in command(path[:1]).commands:
                    path = path + ["run"]  # `verifier cluster PHOTOS...` is `cluster run`
                found.append((path, part))
    return found


def test_every_option_a_heading_names_exists_with_its_default():
    checked = 0
    for path, text in headings():
        if len(path) > 1 and path[1] not in getattr(command(path[:1]), "commands", {}):
            path = path[:1]
        cmd = command(path)
        for flag, value in re.findall(r"\[(-{1,2}[a-z][a-z-]*)(?: ([^\]\s]+))?\]", text):
            param = option(cmd, flag)
            if value and not value.isupper() and "|" not in value:
                assert same(value, param), f"{' '.join(path)} {flag}: docs say {value}, --help says {param.default}"
            checked += 1
    assert checked > 20


def test_the_train_table_matches_the_program():
    text = (DOCS / "cli.md").read_text("utf-8")
    table = text.split("## `verifier train --data DIR`", 1)[1].split("\n\n", 2)[1]
    train = command(["train"])
    rows = [re.match(r"\| `(--[a-z-]+)` \| ([^|]+) \|", line) for line in table.splitlines()]
    rows = [r for r in rows if r]
    assert len(rows) >= 20
    documented = {flag for flag, _ in (r.groups() for r in rows)}
    for flag, shown in (r.groups() for r in rows):
        param = option(train, flag)
        assert same(shown.strip(), param), f"train {flag}: docs say {shown.strip()}, --help says {param.default}"
    missing = {p.opts[0] for p in train.params if isinstance(p, click.Option)
               and p.opts[0].startswith("--") and p.opts[0] not in documented | {"--data", "--json"}}
    assert not missing, f"train options the table does not list: {sorted(missing)}"


def test_the_readme_stays_a_guide():
    assert len((ROOT / "README.md").read_text("utf-8").splitlines()) <= 360


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_between_pages_resolve(page: Path):
    for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", page.read_text("utf-8")):
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which is not there"


def test_every_page_with_runnable_examples_is_run():
    runnable = {page for page in PAGES if _examples(page)}
    assert runnable <= set(DOCUMENTS), f"examples nobody runs: {sorted(p.name for p in runnable - set(DOCUMENTS))}"


def test_every_measured_row_names_its_command_and_date():
    """The benchmarks page's table: each figure with the script that measures it (or
    ``same``: the row above's) and the day it was measured."""
    rows = [line for line in (DOCS / "benchmarks.md").read_text("utf-8").splitlines()
            if line.startswith("| ") and not line.startswith("| what |")]
    assert len(rows) > 40
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 4, row
        what, figure, command, measured = cells
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", measured), row
        assert command.startswith(("same", "`python")) or "benchmarks/" in command or "pytest" in command, row
        for script in re.findall(r"benchmarks/(\w+)\.py", command):
            assert (ROOT / "benchmarks" / f"{script}.py").is_file(), row


def test_every_route_of_the_service_is_in_its_table():
    """Each ``/v1`` route (and the health routes) appears in docs/service.md's table with
    its method; placeholders may be named differently (``{photo_id}`` as ``{id}``)."""
    from jobs.api.routes import clusters, gallery, health, reports, search

    table = re.sub(r"\{[^}]*\}", "{}", (DOCS / "service.md").read_text("utf-8"))
    routes = [(method, re.sub(r"\{[^}]*\}", "{}", route.path))
              for module in (search, gallery, clusters, reports, health) for route in module.router.routes
              for method in sorted(route.methods - {"HEAD"})]
    assert len(routes) > 20
    assert [r for r in routes if f"`{r[0]} {r[1]}" not in table] == []
