"""Every hint in an error names an option that exists where the user stands: the
catalogue of messages in the source (each ``--option`` some command has), and the
messages a user meets first (no face, no such file) on the commands that print them
(each ``--option`` one of that command's own)."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from jobs.cli import main

ROOT = Path(__file__).resolve().parents[2]
OPTION = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w{-])")


def commands(group: click.Group = main, prefix: str = "") -> dict[str, click.Command]:
    out = {}
    for name, command in group.commands.items():
        out[prefix + name] = command
        if isinstance(command, click.Group):
            out.update(commands(command, prefix + name + " "))
    return out


def options(command: click.Command) -> set[str]:
    return {o.lstrip("-") for p in command.params for o in p.opts + p.secondary_opts if o.startswith("--")}


def test_every_option_a_message_names_exists():
    known = options(main) | {o for c in commands().values() for o in options(c)} | {"help"}
    named: dict[str, str] = {}
    for path in sorted((ROOT / "jobs").rglob("*.py")) + sorted((ROOT / "verifier").rglob("*.py")) \
            + sorted((ROOT / "storage").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for option in OPTION.findall(node.value):
                    named.setdefault(option, f"{path.relative_to(ROOT)}:{node.lineno}")
    unknown = {o: where for o, where in named.items() if o not in known}
    assert not unknown, f"messages name options no command has: {unknown}"


@pytest.fixture
def detector_home(home_with_model, tmp_path):
    """The tiny model as if trained with MTCNN faces (its branch is the same), with a
    small gallery embedded."""
    from verifier.synthetic import write_identity_set

    path = home_with_model / "models" / "tiny" / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps(config | {"detector": "mtcnn"}))
    data = write_identity_set(tmp_path / "gallery", identities=2, per_identity=2, size=32)
    r = CliRunner().invoke(main, ["--home", str(home_with_model), "-q", "embed", "--data", str(data)])
    assert r.exit_code == 0, r.output
    return home_with_model


def test_the_first_errors_a_user_meets_name_only_their_commands_options(detector_home, tmp_path):
    blank = tmp_path / "blank.png"
    PILImage.fromarray(np.full((96, 96, 3), 128, np.uint8)).save(blank)
    missing = tmp_path / "nope.png"
    home = ["--home", str(detector_home)]
    table = commands()
    seen = 0
    for words in (["query", str(blank)], ["query", str(missing)], ["verify", str(blank), str(blank)],
                  ["verify", str(missing), str(blank)], ["detect", str(missing)]):
        r = CliRunner().invoke(main, [*home, *words])
        assert "Traceback" not in r.output, r.output
        assert r.exit_code != 0 or "no face" in r.output or "missing" in r.output, (words, r.output)
        if str(missing) in words:
            assert "no such file" in r.output, (words, r.output)
        else:
            assert "no face found" in r.output, (words, r.output)
        wrong = set(OPTION.findall(r.output)) - options(table[words[0]]) - options(main)
        assert not wrong, f"`verifier {words[0]}` names options it does not have: {wrong}\n{r.output}"
        seen += 1
    assert seen == 5
