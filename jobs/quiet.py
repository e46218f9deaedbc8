"""Quiet start-up: TensorFlow, absl and CUDA write start-up lines straight to the
process's standard error (``oneDNN custom operations are on``, ``failed call to
cuInit``, ``All log messages before absl::InitializeLog()``), which look like
failures to a newcomer on a machine without a GPU. Unless ``-v`` is given, they
are swallowed while TensorFlow starts; an import that fails shows them."""
from __future__ import annotations

import logging
import os
import sys
import tempfile


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
