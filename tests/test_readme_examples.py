"""The README's examples run as written, from the repository root, where a newcomer
stands after the set-up command, one after the other in one terminal, and print
what the README shows (:mod:`tests.readme_examples` says how they are compared)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SEED_FACES
from tests.readme_examples import ROOT, Outcome, Step, examples, newcomer_env, problems, run, unmatched


def test_the_examples_are_found_and_start_with_the_main_command():
    found = examples()
    steps = [step for example in found for step in example.steps]
    assert steps[0].command.startswith("verifier pipeline --data ../shared/data/seed-faces")
    assert any(step.command.startswith("curl") for step in steps)
    assert any(step.command.startswith("verifier serve") for step in steps)
    assert sum(example.python is not None for example in found) >= 2
    assert all(step.line > 0 for step in steps)


def test_printed_lines_are_compared_by_shape():
    shown = ["model dlib-1, test split: 703 pairs; run 3", "[...]", "  1  obama  0.0000  yes  /a/b.png",
             '{"identity":"lula","photos":[{"photo_id":12,"created":true}]}']
    printed = ["model dlib-2, test split: 99 pairs; run 5", "noise", "  1  obama  0.1000  yes  /c/d.png",
               '{"identity":"lula","photos":[{"photo_id":7,"created":true}]}']
    assert unmatched(shown, printed) is None
    assert unmatched(shown, [line.replace("obama", "lula") for line in printed]) == shown[2]
    assert unmatched(shown, printed[:2] + printed[3:]) == shown[2]  # a line missing
    assert unmatched(shown, printed[::-1]) is not None              # out of order
    assert unmatched(['{"a":1}'], ['{"a":1,"b":2}']) == '{"a":1}'  # a field more is a change
    assert unmatched(["key created"], [], ["key created"]) is None  # standard error counts


def test_a_step_fails_on_its_status_a_traceback_or_what_it_prints():
    step = Step("verifier verify a b; echo $?", ["same: distance 0.1", "0"], 1)
    assert not Outcome(step, 0, "same: distance 0.2\n0\n", "").problems()
    assert Outcome(step, 0, "same: distance 0.2\n1\n", "").problems()
    assert Outcome(step, 0, "different: distance 0.2\n0\n", "").problems()
    plain = Step("verifier gallery", [], 1)
    assert Outcome(plain, 2, "", "").problems()
    assert Outcome(plain, 0, "", "Traceback (most recent call last):\n").problems()


@pytest.mark.integration
def test_every_readme_example_runs_as_written_from_the_repository_root(tmp_path: Path):
    pytest.importorskip("face_recognition_models")
    if not SEED_FACES.is_dir() or SEED_FACES.resolve() != (ROOT / "../shared/data/seed-faces").resolve():
        pytest.skip("the README's paths need ../shared/data/seed-faces beside the repository")
    results = run(examples(), tmp_path, newcomer_env(tmp_path / "home"), timeout=1500)
    found = problems(results)
    assert not found, "\n\n".join(found)
