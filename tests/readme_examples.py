"""Run the examples of the README and of the reference pages under ``docs/`` as a
newcomer would, and compare what they print with what the pages show.

The documents are read in the order of :data:`DOCUMENTS` (the README, then the pages
whose examples continue its session: the library, then the benchmarks, whose
``train`` makes a new most recent model). Every fenced ``console`` or ``text`` block with ``$ `` lines is an example: its
commands run in order in **one** bash session (variables, ``cd`` and background jobs
carry over from block to block, as in the reader's terminal) from a directory that
looks like the repository root (its top-level entries linked, ``../shared`` beside it),
so ``examples/`` and the workspace never land in the checkout. Every ``python`` block
runs there too, after the commands above it. ``bash`` blocks are not run: they are
the set-up command (CI runs it), downloads (no internet here) and commands repeated
in a console block.

What a command printed is compared with what the README shows by *shape*: per line,
words as written, while every word holding a digit or a ``/`` (numbers, paths, model
versions, timings) and every number or path inside a JSON line stands for "some
value". Each shown line must appear, in order, among the lines printed (``[...]``
marks where the README trims). A step ending in ``echo $?`` must print the exit status
shown; any other must exit 0.

    python -m tests.readme_examples              # run them all, print mismatches
    python -m tests.readme_examples --update     # and write what they printed into the README
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = (README, ROOT / "docs" / "library.md", ROOT / "docs" / "benchmarks.md")
"""The documents whose examples run, in the order they run."""
SHOWN_PORT = "8080"
"""The port the README's service examples use; the runner picks a free one."""


@dataclass
class Step:
    command: str
    shown: list[str] = field(default_factory=list)
    line: int = 0
    document: Path = README


@dataclass
class Example:
    """A fenced block: shell ``steps``, or a ``python`` program."""

    line: int
    steps: list[Step] = field(default_factory=list)
    python: str | None = None
    document: Path = README

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


@dataclass
class Outcome:
    step: Step
    status: int
    stdout: str
    stderr: str

    def problems(self) -> list[str]:
        """What differs from the README, empty when the step ran as shown."""
        where = f"{self.step.document.relative_to(ROOT)}:{self.step.line}: $ {self.step.command}"
        found: list[str] = []
        if "Traceback (most recent call last)" in self.stderr + self.stdout:
            found.append(f"{where}\n  printed a traceback:\n{self.stderr[-3000:]}")
        out = self.stdout.splitlines()
        if self.step.command.rstrip().endswith("echo $?"):
            if not out or not self.step.shown or out[-1].strip() != self.step.shown[-1].strip():
                found.append(f"{where}\n  exit status {out[-1] if out else '(none)'}, the README shows "
                             f"{self.step.shown[-1] if self.step.shown else '(nothing)'}")
        elif self.status != 0:
            found.append(f"{where}\n  exited {self.status}:\n{self.stdout[-1500:]}{self.stderr[-1500:]}")
        missing = unmatched(self.step.shown, out, self.stderr.splitlines())
        if missing is not None:
            found.append(f"{where}\n  the README shows\n    {missing}\n  and it printed\n    "
                         + "\n    ".join(out[:60]))
        return found


def examples(paths: tuple[Path, ...] = DOCUMENTS) -> list[Example]:
    """The runnable blocks of ``paths``, in order."""
    return [example for path in paths for example in _examples(path)]


def _examples(path: Path) -> list[Example]:
    found: list[Example] = []
    lines = path.read_text("utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        lang, start = fence.group(1), i + 1
        end = next(j for j in range(start, len(lines)) if lines[j].startswith("```"))
        body = lines[start:end]
        if lang == "python":
            found.append(Example(start, python="\n".join(body) + "\n", document=path))
        elif lang in ("console", "text") and any(line.startswith("$ ") for line in body):
            example = Example(start, document=path)
            for n, line in enumerate(body, start + 1):
                if line.startswith("$ "):
                    example.steps.append(Step(line[2:], [], n, path))
                elif example.steps:
                    example.steps[-1].shown.append(line)
            found.append(example)
        i = end + 1
    return found


def _value(word: str) -> bool:
    return bool(re.search(r"[0-9/]", word))


def _json_shape(value):
    if isinstance(value, dict):
        return {k: _json_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_shape(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return 0
    return "#" if _value(value) else value


def shape(line: str):
    """A printed line with its values blanked out (see the module's docstring)."""
    text = line.strip()
    if text[:1] in "{[":
        try:
            return ("json", json.dumps(_json_shape(json.loads(text)), sort_keys=True))
        except ValueError:
            pass
    return tuple("#" if _value(word) else word for word in text.split())


def unmatched(shown: list[str], printed: list[str], aside: list[str] = ()) -> str | None:
    """The first shown line that is not among ``printed`` (in order) nor anywhere
    in ``aside`` (standard error: the terminal shows both), else None."""
    shapes = [shape(line) for line in printed if line.strip()]
    elsewhere = {shape(line) for line in aside if line.strip()}
    at = 0
    for line in shown:
        if not line.strip() or line.strip() == "[...]":
            continue
        want = shape(line)
        found = next((n for n in range(at, len(shapes)) if shapes[n] == want), None)
        if found is not None:
            at = found + 1
        elif want not in elsewhere:
            return line
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stage(base: Path) -> Path:
    """A directory that looks like the repository root: its top-level entries
    linked (the checkout itself is never written), ``../shared`` beside it."""
    root = base / "siamese-verifier"
    root.mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "examples", "workspace"):
            (root / entry.name).symlink_to(entry)
    shared = (ROOT / ".." / "shared").resolve()
    if shared.exists():
        (base / "shared").symlink_to(shared)
    return root


def script(blocks: list[Example], out: Path, port: int) -> str:
    """One bash program running every block, each step's output to its own files."""
    parts = ["set +e", f"cd {shlex.quote(str(out.parent / 'siamese-verifier'))}"]
    n = 0
    for block in blocks:
        if block.python is not None:
            tag = f"p{block.document.stem}-{block.line}"
            program = out / f"{tag}.py"
            program.write_text(block.python, "utf-8")
            parts.append(f"{{ python {shlex.quote(str(program))}\n}} >{out}/{tag}.out "
                         f"2>{out}/{tag}.err; echo $? >{out}/{tag}.rc")
            continue
        for step in block.steps:
            command = step.command.replace(f"localhost:{SHOWN_PORT}", f"localhost:{port}") \
                                  .replace(f"--port {SHOWN_PORT}", f"--port {port}")
            parts.append(f"{{ {command}\n}} >{out}/{n}.out 2>{out}/{n}.err; echo $? >{out}/{n}.rc")
            n += 1
    return "\n".join(parts) + "\n"


def run(blocks: list[Example], base: Path, env: dict[str, str], timeout: float = 1800) -> list:
    """Run ``blocks`` (see :func:`script`); returns an :class:`Outcome` per shell step
    and ``(line, status, stderr)`` per python block."""
    root = stage(base)
    out = base / "outputs"
    out.mkdir()
    port = free_port()
    program = out / "examples.sh"
    program.write_text(script(blocks, out, port), "utf-8")
    proc = subprocess.Popen(["bash", str(program)], cwd=root, env=env, start_new_session=True,
                            stdin=subprocess.DEVNULL)
    try:
        proc.wait(timeout=timeout)
    finally:
        try:  # the README's own `kill %1` stops its server; anything left goes too
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    results: list = []
    n = 0
    read = lambda p: p.read_text("utf-8", "replace") if p.exists() else ""  # noqa: E731
    for block in blocks:
        if block.python is not None:
            tag = f"p{block.document.stem}-{block.line}"
            rc = read(out / f"{tag}.rc").strip()
            results.append((block.where, int(rc) if rc else -1, read(out / f"{tag}.err")))
            continue
        for step in block.steps:
            rc = read(out / f"{n}.rc").strip()
            results.append(Outcome(step, int(rc) if rc else -1, read(out / f"{n}.out"),
                                   read(out / f"{n}.err")))
            n += 1
    return results


def newcomer_env(home: Path) -> dict[str, str]:
    """The environment after the set-up command with the virtual environment active."""
    return {**os.environ, "VERIFIER_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3",
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}


def problems(results: list) -> list[str]:
    found: list[str] = []
    for result in results:
        if isinstance(result, Outcome):
            found += result.problems()
        else:
            where, status, stderr = result
            if status != 0:
                found.append(f"{where}: the python example exited {status}:\n{stderr[-3000:]}")
    return found


def update(path: Path, results: list, home: Path) -> int:
    """Write what each mismatching step of ``path`` (or one that shows nothing but
    printed something) printed in place of what it shows (steps trimmed with
    ``[...]`` are left for a person to trim again); returns the steps rewritten."""
    lines = path.read_text("utf-8").splitlines()
    changed = 0
    mine = (r for r in results if isinstance(r, Outcome) and r.step.document == path)
    for result in sorted(mine, key=lambda r: -r.step.line):
        unshown = not result.step.shown and result.stdout.strip() and not result.step.command.endswith("&")
        if not (result.problems() or unshown) or "[...]" in result.step.shown or result.status < 0:
            continue
        printed = result.stdout.replace(str(home), "~/.local/share/siamese-verifier").splitlines()
        at = result.step.line  # the shown lines follow the `$` line (1-based)
        lines[at:at + len(result.step.shown)] = printed
        changed += 1
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return changed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        results = run(examples(), Path(tmp), newcomer_env(home))
        for result in results:
            if isinstance(result, Outcome):
                print(f"$ {result.step.command}  [exit {result.status}]")
                print(result.stdout, end="")
        found = problems(results)
        print("\n\n".join(found) or "every example ran as the README shows")
        if "--update" in sys.argv[1:]:
            for path in DOCUMENTS:
                print(f"{update(path, results, home)} steps of {path.relative_to(ROOT)} rewritten "
                      "with what they printed")
        sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
