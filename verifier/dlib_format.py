"""A reader for dlib's serialised deep networks (``dlib::serialize`` of a ``net_type``).

Encodings (``dlib/serialize.h``): an integer is a control byte (bit 7 = negative,
low 4 bits = byte count) followed by that many little-endian bytes; a float is two
integers, mantissa and exponent (value = mantissa * 2**exponent); a bool is one
ASCII byte; a string is a length and its bytes. A tensor is version 2, four
dimensions (num_samples, k, nr, nc) and raw little-endian float32 data; an alias
tensor is version 1 and four dimensions.

Nesting (``dlib/dnn/core.h``): the loss layer comes first, then each ``add_layer``
writes its version and its subnetwork before its own settings, so after a run of
version integers the layers appear in forward order, input first. Tag and skip
layers store nothing of their own; the wiring comes from the known network.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import VerifierError


class DlibFormatError(VerifierError):
    """The file is not a dlib network in the expected format."""


class Reader:
    """Sequential decoder over the bytes of a dlib serialisation."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def at_end(self) -> bool:
        return self.pos == len(self.data)

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of file at byte {self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def peek_int(self) -> int:
        saved = self.pos
        try:
            return self.int()
        finally:
            self.pos = saved

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8:
            raise DlibFormatError(f"bad integer control byte {control:#x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little") if size else 0
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        byte = self._take(1)
        if byte not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {byte!r} at byte {self.pos - 1}")
        return byte == b"1"

    def string(self) -> str:
        return self._take(self.int()).decode("latin-1")

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"unsupported tensor version {version} at byte {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise DlibFormatError(f"unsupported alias tensor version {version} at byte {self.pos}")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


@dataclass
class Layer:
    """One stored layer: its dlib name, scalar settings and weight arrays."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Network:
    loss: str
    loss_settings: dict[str, float]
    input: Layer
    layers: list[Layer]  # forward order, input excluded
    nesting: list[int]   # the version integers of the wrappers, outermost first

    @property
    def parameter_count(self) -> int:
        return sum(int(w.size) for layer in self.layers for w in layer.weights.values())


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    flat = params.reshape(-1)
    out, start = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        out.append(flat[start:start + n].reshape(shape))
        start += n
    if start != flat.size:
        raise DlibFormatError(f"parameter tensor of {flat.size} values does not split into {shapes}")
    return out


def _con(r: Reader) -> Layer:
    params = r.tensor()
    s = {k: r.int() for k in ("num_filters", "rows", "cols", "stride_y", "stride_x", "pad_y", "pad_x")}
    filters, bias = r.alias(), r.alias()
    s["multipliers"] = [r.float() for _ in range(4)]
    w, b = _split(params, filters, bias)
    return Layer("con", s, {"filters": w, "bias": b.reshape(-1)})


def _affine(r: Reader) -> Layer:
    params = r.tensor()
    gamma, beta = r.alias(), r.alias()
    mode = r.int()
    g, b = _split(params, gamma, beta)
    return Layer("affine", {"mode": mode}, {"gamma": g.reshape(-1), "beta": b.reshape(-1)})


def _fc(r: Reader) -> Layer:
    s = {"num_outputs": r.int(), "num_inputs": r.int()}
    params = r.tensor()
    weight, bias = r.alias(), r.alias()
    s["bias_mode"] = r.int()
    s["multipliers"] = [r.float() for _ in range(4)]
    if s["bias_mode"] == 1:  # no bias: the bias alias is empty
        (w,) = _split(params, weight)
        return Layer("fc", s, {"kernel": w.reshape(weight[0], weight[1])})
    w, b = _split(params, weight, bias)
    return Layer("fc", s, {"kernel": w.reshape(weight[0], weight[1]), "bias": b.reshape(-1)})


def _pool(kind: str):
    def read(r: Reader) -> Layer:
        s = {k: r.int() for k in ("rows", "cols", "stride_y", "stride_x", "pad_y", "pad_x")}
        return Layer(kind, s)
    return read


LAYER_READERS = {
    "con_4": _con, "affine_": _affine, "fc_2": _fc,
    "max_pool_2": _pool("max_pool"), "avg_pool_2": _pool("avg_pool"),
    "relu_": lambda r: Layer("relu"), "add_prev_": lambda r: Layer("add_prev"),
}


def _input_layer(r: Reader, name: str) -> Layer:
    if name != "input_rgb_image_sized":
        raise DlibFormatError(f"unsupported input layer {name!r}")
    means = [r.float() for _ in range(3)]
    return Layer("input", {"mean_rgb": means, "rows": r.int(), "cols": r.int()})


def _layer_tail(r: Reader) -> None:
    """Each add_layer ends with three bools and three (here empty) tensors."""
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()


def read_network(data: bytes) -> Network:
    """Decode a whole serialised network; the file must be consumed exactly."""
    r = Reader(data)
    if r.int() != 1:
        raise DlibFormatError("not a dlib network: expected the loss layer's version 1")
    loss = r.string()
    if not loss.startswith("loss_metric"):
        raise DlibFormatError(f"unsupported loss layer {loss!r}")
    loss_settings = {"margin": r.float(), "distance_threshold": r.float()}
    nesting = []
    # wrapper versions (1: tag/skip, 2: add_layer, 3: the add_layer on the input)
    # run until the length of the input layer's name
    while r.peek_int() in (1, 2, 3):
        nesting.append(r.int())
    input_layer = _input_layer(r, r.string())
    layers = []
    while not r.at_end:
        name = r.string()
        reader = LAYER_READERS.get(name)
        if reader is None:
            raise DlibFormatError(f"unsupported layer {name!r} at byte {r.pos}")
        layers.append(reader(r))
        _layer_tail(r)
        if len(layers) == 1 and nesting and nesting[-1] == 3:
            # version 3 of the add_layer on the input also stores its sample expansion factor
            sample_expansion = r.int()
            input_layer.settings["sample_expansion_factor"] = sample_expansion
    return Network(loss, loss_settings, input_layer, layers, nesting)


def read_network_file(path: Path | str) -> Network:
    return read_network(Path(path).read_bytes())


# --- writing, for tests and tools: the same encodings -------------------------------

def encode_int(value: int) -> bytes:
    neg = value < 0
    raw = abs(int(value)).to_bytes(8, "little").rstrip(b"\0") or b"\0"
    return bytes([len(raw) | (0x80 if neg else 0)]) + raw


def encode_float(value: float) -> bytes:
    """dlib's float encoding, exact for float32 values."""
    if value == 0:
        return encode_int(0) + encode_int(0)
    # a float32: its 24-bit mantissa as an integer, and the matching exponent
    mantissa, exponent = np.frexp(np.float32(value))
    return encode_int(int(mantissa * (1 << 24))) + encode_int(int(exponent) - 24)


def encode_string(text: str) -> bytes:
    raw = text.encode("latin-1")
    return encode_int(len(raw)) + raw


def encode_tensor(array: np.ndarray) -> bytes:
    a = np.asarray(array, dtype="<f4")
    shape = a.shape + (1,) * (4 - a.ndim) if a.size else (0, 0, 0, 0)
    return encode_int(2) + b"".join(encode_int(d) for d in shape) + a.tobytes()


def encode_alias(shape: tuple[int, int, int, int]) -> bytes:
    return encode_int(1) + b"".join(encode_int(d) for d in shape)


