"""Each package states its public surface; every name in it resolves, and importing
the packages (what the CLI does to start) loads no TensorFlow."""
import importlib
import subprocess
import sys

import pytest

from verifier import defaults
from verifier.backbones import BACKBONES


@pytest.mark.parametrize("package", ["verifier", "storage", "jobs"])
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_cli_import_is_light():
    code = "import jobs.cli, storage, verifier, sys; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_backbone_choices_are_the_registry():
    assert tuple(BACKBONES) == defaults.BACKBONE_NAMES
