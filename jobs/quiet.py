"""Quiet start-up: TensorFlow, absl and CUDA write start-up lines straight to the
process's standard error (``oneDNN custom operations are on``, ``failed call to
cuInit``, ``All log messages before absl::InitializeLog()``), which look like
failures to a newcomer on a machine without a GPU. Unless ``-v`` is given, they
are swallowed while TensorFlow starts; an import that fails shows them."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from typing import Iterator


def start_tensorflow(verbose: int = 0) -> None:
    """Import TensorFlow and let it look for devices, quietly unless ``verbose``."""
    if "tensorflow" in sys.modules:
        return
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no standard error to redirect
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # where CUDA complains
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)


NATIVE_LOG_LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [DIWEF] \d+ \d+\] ")
"""A line of Ray's C++ logging (``[2026-11-29 08:42:40,602 E 18442 18442] core_worker.cc...``)."""


@contextlib.contextmanager
def without_native_log_lines(pattern: re.Pattern = NATIVE_LOG_LINE) -> Iterator[None]:
    """Drop the lines matching ``pattern`` that native code writes to this process's
    standard error (Ray's driver logs scheduling notes there, at error level, that
    are no error of the user's), passing everything else (progress bars included)
    through as it comes. A no-op where standard error has no file descriptor."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        line = b""  # the start of a line that might be a native log line
        while chunk := os.read(read_end, 65536):
            out = b""
            for piece in re.split(rb"(?<=[\r\n])", chunk):
                line += piece
                if line[:1] == b"[" and not line.endswith((b"\n", b"\r")) and len(line) < 4096:
                    continue  # wait for the whole line before deciding
                if not pattern.match(line):
                    out += line
                line = b""
            if out:
                os.write(saved, out)
        if line and not pattern.match(line):
            os.write(saved, line)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the forwarder drains and ends
        thread.join(timeout=5)
        os.close(read_end)
        os.close(saved)
