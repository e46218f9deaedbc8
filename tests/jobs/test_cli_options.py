"""Global options on either side of the command, and quiet start-up."""
import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from jobs.cli import hoist_global_options, main
from verifier.synthetic import write_identity_set

ROOT = Path(__file__).resolve().parents[2]
NOISE = ("absl::InitializeLog", "oneDNN", "cuInit", "cudart_stub", "cpu_feature_guard")


def test_hoisting_keeps_values_with_their_options():
    h = lambda *a: hoist_global_options(main, list(a))  # noqa: E731
    assert h("embed", "--home", "X", "--data", "D") == ["--home", "X", "embed", "--data", "D"]
    assert h("-q", "embed", "--home=X", "-v", "--data", "D") == \
        ["-q", "--home=X", "-v", "embed", "--data", "D"]
    assert h("keys", "create", "k", "--scope", "read", "--db-url", "sqlite://") == \
        ["--db-url", "sqlite://", "keys", "create", "k", "--scope", "read"]
    assert h("query", "-k", "3", "-qv", "x.jpg") == ["-qv", "query", "-k", "3", "x.jpg"]
    assert h("query", "--", "--home") == ["query", "--", "--home"]  # after --: a photo name
    assert h("--home", "X", "gallery") == ["--home", "X", "gallery"]


def test_home_before_or_after_the_command_is_the_same(home_with_model, tmp_path):
    data = write_identity_set(tmp_path / "g", identities=2, per_identity=2, size=32)
    home = str(home_with_model)
    after = CliRunner().invoke(main, ["embed", "--data", str(data), "--home", home, "-q", "--json"])
    assert after.exit_code == 0, after.output
    assert json.loads(after.output)["added"] == 4
    before = CliRunner().invoke(main, ["--home", home, "-q", "embed", "--data", str(data), "--json"])
    assert json.loads(before.output)["unchanged"] == 4  # the same workspace
    r = CliRunner().invoke(main, ["gallery", "--json", "--home", home])
    assert [i["photos"] for i in json.loads(r.output)["identities"]] == [2, 2]


def test_quiet_by_default_and_verbose_shows_tensorflow(tmp_path):
    """`train` loads TensorFlow at start: quietly, unless -v. (Inference commands do
    not load it at all: tests/jobs/test_no_tensorflow.py.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    (tmp_path / "empty").mkdir()
    cmd = [sys.executable, "-m", "jobs", "train", "--data", str(tmp_path / "empty"),
           "--home", str(tmp_path / "h")]
    quiet = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode != 0
    assert quiet.stderr.strip().splitlines() == [quiet.stderr.strip()]  # one line: the error
    assert quiet.stderr.startswith("Error: ")
    loud = subprocess.run(cmd + ["-v"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert loud.returncode == quiet.returncode and any(n in loud.stderr for n in NOISE), loud.stderr
    verify = [sys.executable, "-m", "jobs", "verify", "a.jpg", "b.jpg", "--home", str(tmp_path / "h")]
    quiet = subprocess.run(verify, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 2 and quiet.stderr.startswith("Error: no trained model")
    assert quiet.stderr.strip().splitlines() == [quiet.stderr.strip()]


def test_native_log_lines_are_dropped_and_everything_else_passes(capfd):
    """Ray's driver writes scheduling notes straight to file descriptor 2; a quiet
    run drops those lines and nothing else (a progress bar's carriage returns, a
    line that only starts with a bracket)."""
    from jobs.quiet import without_native_log_lines

    with without_native_log_lines():
        os.write(2, b"[2026-11-29 08:42:40,602 E 18442 18442] core_worker.cc:2465: Actor with ")
        os.write(2, b"class name ... will fail.\nkept\n")
        os.write(2, b"embedding:  10%|#   | 1/10\rembedding: 100%|####| 10/10\r")
        os.write(2, b"[not a log line] kept too\n[2026-11-29 08:42:41,000 I 1 1] x.cc:3: note\n")
        os.write(2, b"[unfinished")
    assert capfd.readouterr().err == ("kept\nembedding:  10%|#   | 1/10\rembedding: 100%|####| 10/10\r"
                                      "[not a log line] kept too\n[unfinished")
