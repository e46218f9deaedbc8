import json
import os

import pytest

from storage.errors import ModelNotFound, WorkspaceError
from storage.files import atomic_file, atomic_folder, remove_stale_temporaries, write_json_atomic
from storage.workspace import Workspace, default_home


def test_write_json_atomic_replaces_whole(tmp_path):
    path = tmp_path / "a" / "x.json"
    write_json_atomic(path, {"v": 1})
    write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_atomic_file_keeps_old_content_on_failure(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as tmp:
            tmp.write_bytes(b"new, half")
            raise RuntimeError("crash")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_atomic_folder_all_or_nothing(tmp_path):
    target = tmp_path / "models" / "m1"
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("x")
            raise KeyboardInterrupt
    assert not target.exists()
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("x")
    assert (target / "a.txt").read_text() == "x"
    with pytest.raises(FileExistsError):
        with atomic_folder(target):
            pass


def test_stale_temporaries_removed(tmp_path):
    stale = tmp_path / ".tmp-m-123"
    stale.mkdir()
    os.utime(stale, (0, 0))
    fresh = tmp_path / ".tmp-m-456"
    fresh.mkdir()
    assert remove_stale_temporaries(tmp_path) == 1
    assert fresh.exists() and not stale.exists()


def test_workspace_home_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("VERIFIER_HOME", str(tmp_path / "env-home"))
    assert default_home() == tmp_path / "env-home"
    monkeypatch.delenv("VERIFIER_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "siamese-verifier"


def test_workspace_models(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(ModelNotFound, match="verifier train"):
        ws.resolve_model()
    for name, created in (("b", "2026-01-02"), ("a", "2026-01-03")):
        write_json_atomic(ws.model_dir(name) / "config.json", {"created": created})
    (ws.models_dir / ".tmp-half").mkdir()
    assert ws.model_names() == ["b", "a"]
    assert ws.resolve_model() == "a"
    assert ws.resolve_model("b") == "b"
    with pytest.raises(ModelNotFound, match="known: b, a"):
        ws.resolve_model("zzz")
    with pytest.raises(WorkspaceError, match="invalid model name"):
        ws.model_dir("../escape")


def test_workspace_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WorkspaceError, match="--home"):
        Workspace.open(blocker / "ws")
