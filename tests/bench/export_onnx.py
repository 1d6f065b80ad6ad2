#!/usr/bin/python3
"""Export a Lepton MLP as two ONNX graphs for the ONNX Runtime rows of bench_inference.

Writes OUT_DIR/model_f32.onnx (MatMul + Add + Relu, then Sigmoid or Softmax) and
OUT_DIR/model_int8.onnx, the dynamic int8 form that ONNX Runtime's quantize_dynamic
produces for MatMul: DynamicQuantizeLinear on the activations (uint8, per tensor, per
call), MatMulInteger against int8 weights quantized per tensor and symmetrically
(zero point 0, scale max|W| / 127), then Cast, a multiply by x_scale * w_scale and the
float bias. ONNX Runtime fuses this chain into com.microsoft DynamicQuantizeMatMul when
graph optimization is on.

Both graphs take "input" [N, features] float32, already preprocessed as Lepton's
Preprocessor.transform writes it, and return "probability" [N, outputs] float32.

Usage: PYTHONPATH=build-main/bindings/python /usr/bin/python3 tests/bench/export_onnx.py MODEL OUT_DIR
Needs Debian's python3-onnx (tested with onnx 1.12, opset 17) and numpy.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import lepton

OPSET = 17


def network_layers(model_path):
    """Return (weight [inputs, outputs], bias [outputs], is_relu) per layer of the artifact."""
    artifact = lepton.load_artifact(model_path)
    layers = []
    for layer in artifact.network.layers:
        weight = np.ascontiguousarray(np.asarray(layer.weight, dtype=np.float32).T)
        bias = np.asarray(layer.bias, dtype=np.float32)
        activation = layer.activation.name
        if activation not in ("Relu", "Identity"):
            raise ValueError(f"{model_path}: layer activation {activation!r} has no ONNX export here; "
                             "only Relu and Identity are supported")
        layers.append((weight, bias, activation == "Relu"))
    return layers


def quantize_weight(weight):
    """Quantize per tensor and symmetrically to int8, as quantize_dynamic does for QInt8 weights."""
    max_abs = float(np.max(np.abs(weight)))
    scale = max_abs / 127.0 if max_abs > 0 else 1.0
    quantized = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
    return quantized, np.float32(scale)


def add_f32_layer(nodes, initializers, index, source, weight, bias):
    """Append MatMul + Add for one layer and return the name of its output."""
    initializers.append(numpy_helper.from_array(weight, f"w{index}"))
    initializers.append(numpy_helper.from_array(bias, f"b{index}"))
    nodes.append(helper.make_node("MatMul", [source, f"w{index}"], [f"mm{index}"]))
    nodes.append(helper.make_node("Add", [f"mm{index}", f"b{index}"], [f"z{index}"]))
    return f"z{index}"


def add_int8_layer(nodes, initializers, index, source, weight, bias):
    """Append the dynamic int8 chain for one layer and return the name of its output."""
    quantized, scale = quantize_weight(weight)
    initializers.append(numpy_helper.from_array(quantized, f"wq{index}"))
    initializers.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), f"ws{index}"))
    initializers.append(numpy_helper.from_array(np.array(0, dtype=np.int8), f"wz{index}"))
    initializers.append(numpy_helper.from_array(bias, f"b{index}"))

    xq, xs, xz = f"xq{index}", f"xs{index}", f"xz{index}"
    nodes.append(helper.make_node("DynamicQuantizeLinear", [source], [xq, xs, xz]))
    nodes.append(helper.make_node("MatMulInteger", [xq, f"wq{index}", xz, f"wz{index}"], [f"acc{index}"]))
    nodes.append(helper.make_node("Cast", [f"acc{index}"], [f"accf{index}"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Mul", [xs, f"ws{index}"], [f"scale{index}"]))
    nodes.append(helper.make_node("Mul", [f"accf{index}", f"scale{index}"], [f"mm{index}"]))
    nodes.append(helper.make_node("Add", [f"mm{index}", f"b{index}"], [f"z{index}"]))
    return f"z{index}"


def build_model(layers, int8):
    """Build the whole graph: layers, then Sigmoid for one output or Softmax over several."""
    nodes, initializers = [], []
    source = "input"
    for index, (weight, bias, is_relu) in enumerate(layers):
        add_layer = add_int8_layer if int8 else add_f32_layer
        source = add_layer(nodes, initializers, index, source, weight, bias)
        if is_relu:
            nodes.append(helper.make_node("Relu", [source], [f"h{index}"]))
            source = f"h{index}"

    outputs = layers[-1][0].shape[1]
    if outputs == 1:
        nodes.append(helper.make_node("Sigmoid", [source], ["probability"]))
    else:
        nodes.append(helper.make_node("Softmax", [source], ["probability"], axis=1))

    features = layers[0][0].shape[0]
    graph = helper.make_graph(
        nodes, "lepton_mlp_int8" if int8 else "lepton_mlp_f32",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", outputs])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="lepton export_onnx.py")
    onnx.checker.check_model(model)
    return model


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: export_onnx.py MODEL OUT_DIR\n")
        return 2
    model_path, out_dir = argv[1], argv[2]
    layers = network_layers(model_path)
    os.makedirs(out_dir, exist_ok=True)
    for name, int8 in (("model_f32.onnx", False), ("model_int8.onnx", True)):
        path = os.path.join(out_dir, name)
        onnx.save(build_model(layers, int8), path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
