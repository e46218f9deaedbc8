"""Figures of an evaluation, as PNG bytes (matplotlib, no display needed)."""
from __future__ import annotations

import io

import numpy as np

from .defaults import TUTORIAL_THRESHOLD
from .metrics import roc_curve


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _figure(width: float = 5.0, height: float = 3.6):
    """A figure and its axes through matplotlib's object API: no pyplot state, so
    reports can be drawn from several threads at once (a server's requests)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def roc_png(distances: np.ndarray, labels: np.ndarray, threshold: float) -> bytes:
    far, tar, thr = roc_curve(distances, labels)
    fig, ax = _figure()
    ax.plot(far, tar, lw=2, label="ROC")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    i = int(np.searchsorted(thr, threshold, side="right") - 1)
    ax.plot([far[i]], [tar[i]], "o", c="crimson", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="false accept rate", ylabel="true accept rate", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _png(fig)


def det_png(distances: np.ndarray, labels: np.ndarray) -> bytes:
    far, tar, _ = roc_curve(distances, labels)
    frr = 1 - tar
    floor = 1e-4
    fig, ax = _figure()
    ax.plot(np.maximum(far, floor), np.maximum(frr, floor), lw=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="false accept rate", ylabel="false reject rate", title="DET (log-log)")
    ax.grid(True, which="both", alpha=0.3)
    return _png(fig)


def histogram_png(distances: np.ndarray, labels: np.ndarray, threshold: float,
                  tutorial: float | None = TUTORIAL_THRESHOLD) -> bytes:
    y = np.asarray(labels).astype(bool)
    fig, ax = _figure(6.0, 3.6)
    bins = np.linspace(float(np.min(distances)), float(np.max(distances)) + 1e-9, 40)
    ax.hist(distances[y], bins=bins, alpha=0.6, density=True, label=f"same person ({y.sum()})")
    ax.hist(distances[~y], bins=bins, alpha=0.6, density=True, label=f"different ({(~y).sum()})")
    ax.axvline(threshold, c="crimson", lw=2, label=f"threshold {threshold:.3f}")
    if tutorial is not None:
        ax.axvline(tutorial, c="grey", ls="--", lw=1, label=f"tutorial {tutorial}")
    ax.set(xlabel="distance", ylabel="density", title="Distances by pair kind")
    ax.legend()
    return _png(fig)


def confusion_png(tp: int, fp: int, tn: int, fn: int) -> bytes:
    fig, ax = _figure(3.8, 3.4)
    grid = np.array([[tp, fn], [fp, tn]])
    ax.imshow(grid, cmap="Blues")
    for (r, c), v in np.ndenumerate(grid):
        ax.text(c, r, str(v), ha="center", va="center", fontsize=14,
                color="white" if v > grid.max() / 2 else "black")
    ax.set_xticks([0, 1], ["decided same", "decided different"])
    ax.set_yticks([0, 1], ["same person", "different"])
    ax.set_title("Confusion matrix")
    return _png(fig)


def comparison_pngs(curves: list[tuple[str, np.ndarray, np.ndarray]]) -> tuple[bytes, bytes]:
    """ROC and DET of several runs on the same axes: ``[(label, distances, labels)]``."""
    roc, roc_ax = _figure(5.6, 4.0)
    det, det_ax = _figure(5.6, 4.0)
    floor = 1e-4
    for label, distances, labels in curves:
        far, tar, _ = roc_curve(distances, labels)
        roc_ax.plot(far, tar, lw=2, label=label)
        det_ax.plot(np.maximum(far, floor), np.maximum(1 - tar, floor), lw=2, label=label)
    roc_ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    roc_ax.set(xlabel="false accept rate", ylabel="true accept rate", title="ROC",
               xlim=(0, 1), ylim=(0, 1.01))
    roc_ax.legend(loc="lower right", fontsize=8)
    det_ax.set_xscale("log")
    det_ax.set_yscale("log")
    det_ax.set(xlabel="false accept rate", ylabel="false reject rate", title="DET (log-log)")
    det_ax.grid(True, which="both", alpha=0.3)
    det_ax.legend(fontsize=8)
    return _png(roc), _png(det)
