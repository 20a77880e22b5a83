#!/usr/bin/env python3
"""Writes the small ONNX models under test/fixtures/onnx/ with the `onnx` Python package.

They are models this project did not build, in the forms other tools write:

- opset11.onnx ... opset21.onnx: one small conv + linear model per ai.onnx opset, each
  using the operator forms of its opset (Squeeze/Unsqueeze/ReduceMean/Split axes as
  attributes or as inputs, Resize's inputs, GroupNormalization from 18 with per-group
  and from 21 with per-channel scale, Gelu from 20).
- mobile-ops.onnx (opset 14): a MobileNetV3-style block (HardSwish, squeeze-excite with
  HardSigmoid, depthwise conv), nearest 2x Resize, and an Einsum 1x1 projection.
- contrib-function.onnx (opset 17): a com.microsoft contrib op (FastGelu) and a
  model-local function (custom.Swish) after a conv stem, then two Gemm layers, with no
  value_info, so the layers' input types are known only to ONNX Runtime.
- external/mlp.onnx + mlp.onnx.data: saved with external data in one file (a small
  tensor kept inline, as onnx's size threshold does); external-multi/: one file per
  tensor (all_tensors_to_one_file=False).

Not part of the build or the tests: run it by hand when the fixtures must change
(Debian's python3-onnx 1.12; opsets above 17 are newer than that package, so those
models are built without its checker and checked by ONNX Runtime in the tests):

    /usr/bin/python3 scripts/onnx-fixtures.py

`check FILE...` loads each file with onnx.load (external data included) and runs
onnx.checker on it: the check that models written by this project read back in the
`onnx` package (see test/onnx/external-data.test.ts for why it is not run in the tests):

    /usr/bin/python3 scripts/onnx-fixtures.py check out/fused.onnx
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "onnx")
F = TensorProto.FLOAT
I64 = TensorProto.INT64


def rand(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def ir_version(opset):
    # The IR version each opset came with (ONNX's versioning table).
    return {19: 9, 20: 9, 21: 10}.get(opset, 8)


def opset_model(v):
    """x [N,3,8,8] -> Conv -> norm -> Relu -> Resize 2x -> Conv -> pool -> Gemm -> [N,5]."""
    rng = np.random.RandomState(v)
    nodes, inits = [], []
    inits += [init("conv1.weight", rand(rng, 4, 3, 3, 3)), init("conv1.bias", rand(rng, 4))]
    nodes.append(helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c1"],
                                  name="/conv1/Conv", pads=[1, 1, 1, 1]))
    if v >= 18:
        groups_shape = 2 if v < 21 else 4  # per group until opset 20, per channel from 21
        inits += [init("gn.scale", np.ones(groups_shape, np.float32)),
                  init("gn.bias", np.zeros(groups_shape, np.float32))]
        nodes.append(helper.make_node("GroupNormalization", ["c1", "gn.scale", "gn.bias"], ["n1"],
                                      name="/gn/GroupNormalization", num_groups=2))
    else:
        inits += [init("in.scale", np.ones(4, np.float32)), init("in.bias", np.zeros(4, np.float32))]
        nodes.append(helper.make_node("InstanceNormalization", ["c1", "in.scale", "in.bias"],
                                      ["n1"], name="/in/InstanceNormalization"))
    act = "Gelu" if v >= 20 else "Relu"
    nodes.append(helper.make_node(act, ["n1"], ["a1"], name=f"/act/{act}"))
    # Resize: opset 11 needs the roi and scales slots (empty); sizes give the output.
    inits.append(init("resize.sizes", np.array([1, 4, 16, 16], np.int64)))
    if v < 13:
        inits += [init("resize.roi", np.zeros(0, np.float32)), init("resize.scales", np.zeros(0, np.float32))]
        nodes.append(helper.make_node("Resize", ["a1", "resize.roi", "resize.scales", "resize.sizes"],
                                      ["r1"], name="/up/Resize", mode="nearest"))
    else:
        inits.append(init("resize.scales", np.array([1, 1, 2, 2], np.float32)))
        nodes.append(helper.make_node("Resize", ["a1", "", "resize.scales"], ["r1"],
                                      name="/up/Resize", mode="nearest"))
    inits += [init("conv2.weight", rand(rng, 6, 4, 3, 3)), init("conv2.bias", rand(rng, 6))]
    nodes.append(helper.make_node("Conv", ["r1", "conv2.weight", "conv2.bias"], ["c2"],
                                  name="/conv2/Conv", strides=[2, 2], pads=[1, 1, 1, 1]))
    # Mean over H and W, then an unsqueeze/squeeze pair and a split, in the opset's form.
    if v >= 18:
        inits.append(init("axes.hw", np.array([2, 3], np.int64)))
        nodes.append(helper.make_node("ReduceMean", ["c2", "axes.hw"], ["m"], name="/pool/ReduceMean",
                                      keepdims=0))
    else:
        nodes.append(helper.make_node("ReduceMean", ["c2"], ["m"], name="/pool/ReduceMean",
                                      axes=[2, 3], keepdims=0))
    if v >= 13:
        inits.append(init("axes.1", np.array([1], np.int64)))
        nodes.append(helper.make_node("Unsqueeze", ["m", "axes.1"], ["u"], name="/Unsqueeze"))
        nodes.append(helper.make_node("Squeeze", ["u", "axes.1"], ["s"], name="/Squeeze"))
    else:
        nodes.append(helper.make_node("Unsqueeze", ["m"], ["u"], name="/Unsqueeze", axes=[1]))
        nodes.append(helper.make_node("Squeeze", ["u"], ["s"], name="/Squeeze", axes=[1]))
    if v >= 18:
        nodes.append(helper.make_node("Split", ["s"], ["s0", "s1"], name="/Split", axis=1, num_outputs=2))
    elif v >= 13:
        inits.append(init("split", np.array([3, 3], np.int64)))
        nodes.append(helper.make_node("Split", ["s", "split"], ["s0", "s1"], name="/Split", axis=1))
    else:
        nodes.append(helper.make_node("Split", ["s"], ["s0", "s1"], name="/Split", axis=1, split=[3, 3]))
    nodes.append(helper.make_node("Concat", ["s1", "s0"], ["cat"], name="/Concat", axis=1))
    inits += [init("head.weight", rand(rng, 5, 6)), init("head.bias", rand(rng, 5))]
    nodes.append(helper.make_node("Gemm", ["cat", "head.weight", "head.bias"], ["y"], name="/head/Gemm",
                                  transB=1))
    graph = helper.make_graph(
        nodes, f"opset{v}",
        [helper.make_tensor_value_info("x", F, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", F, ["N", 5])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", v)], producer_name="onnx-fixtures")
    m.ir_version = ir_version(v)
    if v <= 17:
        onnx.checker.check_model(m)
    return m


def mobile_ops():
    rng = np.random.RandomState(1)
    n, inits = [], []
    inits += [init("stem.weight", rand(rng, 8, 3, 3, 3)), init("stem.bias", rand(rng, 8))]
    n.append(helper.make_node("Conv", ["x", "stem.weight", "stem.bias"], ["c"], name="/stem/Conv",
                              pads=[1, 1, 1, 1]))
    n.append(helper.make_node("HardSwish", ["c"], ["h"], name="/stem/act/HardSwish"))
    inits += [init("dw.weight", rand(rng, 8, 1, 3, 3)), init("dw.bias", rand(rng, 8))]
    n.append(helper.make_node("Conv", ["h", "dw.weight", "dw.bias"], ["d"], name="/dw/Conv",
                              pads=[1, 1, 1, 1], group=8))
    # Squeeze-excite: pool, reduce, expand, HardSigmoid gate.
    n.append(helper.make_node("GlobalAveragePool", ["d"], ["p"], name="/se/GlobalAveragePool"))
    inits += [init("se.fc1.weight", rand(rng, 4, 8, 1, 1)), init("se.fc1.bias", rand(rng, 4))]
    n.append(helper.make_node("Conv", ["p", "se.fc1.weight", "se.fc1.bias"], ["s1"], name="/se/fc1/Conv"))
    n.append(helper.make_node("Relu", ["s1"], ["s2"], name="/se/Relu"))
    inits += [init("se.fc2.weight", rand(rng, 8, 4, 1, 1)), init("se.fc2.bias", rand(rng, 8))]
    n.append(helper.make_node("Conv", ["s2", "se.fc2.weight", "se.fc2.bias"], ["s3"], name="/se/fc2/Conv"))
    n.append(helper.make_node("HardSigmoid", ["s3"], ["g"], name="/se/HardSigmoid", alpha=1 / 6, beta=0.5))
    n.append(helper.make_node("Mul", ["d", "g"], ["e"], name="/se/Mul"))
    inits.append(init("up.scales", np.array([1, 1, 2, 2], np.float32)))
    n.append(helper.make_node("Resize", ["e", "", "up.scales"], ["u"], name="/up/Resize", mode="nearest"))
    inits.append(init("proj.weight", rand(rng, 6, 8)))
    n.append(helper.make_node("Einsum", ["u", "proj.weight"], ["q"], name="/proj/Einsum",
                              equation="nchw,dc->ndhw"))
    n.append(helper.make_node("GlobalAveragePool", ["q"], ["gp"], name="/pool/GlobalAveragePool"))
    n.append(helper.make_node("Flatten", ["gp"], ["f"], name="/Flatten"))
    inits += [init("head.weight", rand(rng, 5, 6)), init("head.bias", rand(rng, 5))]
    n.append(helper.make_node("Gemm", ["f", "head.weight", "head.bias"], ["y"], name="/head/Gemm", transB=1))
    graph = helper.make_graph(n, "mobile-ops",
                              [helper.make_tensor_value_info("x", F, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", F, ["N", 5])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="onnx-fixtures")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def contrib_function():
    """x [N,3,8,8] -> Conv -> FastGelu (com.microsoft) -> custom.Swish (local function)
    -> pool -> Gemm -> Relu -> Gemm -> [N,4]."""
    rng = np.random.RandomState(2)
    swish = helper.make_function(
        "custom", "Swish", ["X"], ["Y"],
        [helper.make_node("Sigmoid", ["X"], ["S"]), helper.make_node("Mul", ["X", "S"], ["Y"])],
        [helper.make_opsetid("", 17)])
    n, inits = [], []
    inits += [init("stem.weight", rand(rng, 8, 3, 3, 3)), init("stem.bias", rand(rng, 8))]
    n.append(helper.make_node("Conv", ["x", "stem.weight", "stem.bias"], ["c"], name="/stem/Conv",
                              pads=[1, 1, 1, 1]))
    n.append(helper.make_node("FastGelu", ["c"], ["g"], name="/act/FastGelu", domain="com.microsoft"))
    n.append(helper.make_node("Swish", ["g"], ["s"], name="/act2/Swish", domain="custom"))
    n.append(helper.make_node("GlobalAveragePool", ["s"], ["p"], name="/pool/GlobalAveragePool"))
    n.append(helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"))
    inits += [init("fc1.weight", rand(rng, 8, 8)), init("fc1.bias", rand(rng, 8))]
    n.append(helper.make_node("Gemm", ["f", "fc1.weight", "fc1.bias"], ["h"], name="/fc1/Gemm", transB=1))
    n.append(helper.make_node("Relu", ["h"], ["r"], name="/Relu"))
    inits += [init("head.weight", rand(rng, 4, 8)), init("head.bias", rand(rng, 4))]
    n.append(helper.make_node("Gemm", ["r", "head.weight", "head.bias"], ["y"], name="/head/Gemm", transB=1))
    graph = helper.make_graph(n, "contrib-function",
                              [helper.make_tensor_value_info("x", F, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", F, ["N", 4])], inits)
    m = helper.make_model(graph, producer_name="onnx-fixtures", functions=[swish],
                          opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1),
                                         helper.make_opsetid("custom", 1)])
    m.ir_version = 8
    return m


def mlp(seed):
    """x [N,16] -> Gemm 16->32 -> Relu -> MatMul 32->8 (+ bias) -> y; one tiny tensor."""
    rng = np.random.RandomState(seed)
    inits = [init("fc1.weight", rand(rng, 32, 16)), init("fc1.bias", rand(rng, 32)),
             init("fc2.weight_t", rand(rng, 32, 8)), init("fc2.bias", rand(rng, 8)),
             init("scale", np.array([0.5], np.float32))]
    n = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], name="/fc1/Gemm", transB=1),
         helper.make_node("Relu", ["h"], ["r"], name="/Relu"),
         helper.make_node("MatMul", ["r", "fc2.weight_t"], ["m"], name="/fc2/MatMul"),
         helper.make_node("Add", ["m", "fc2.bias"], ["a"], name="/fc2/Add"),
         helper.make_node("Mul", ["a", "scale"], ["y"], name="/Mul")]
    graph = helper.make_graph(n, "mlp", [helper.make_tensor_value_info("x", F, ["N", 16])],
                              [helper.make_tensor_value_info("y", F, ["N", 8])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="onnx-fixtures")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def save_external(model, folder, name, one_file):
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    onnx.save_model(model, os.path.join(folder, name), save_as_external_data=True,
                    all_tensors_to_one_file=one_file, location=f"{name}.data" if one_file else None,
                    size_threshold=64)
    back = onnx.load(os.path.join(folder, name))
    onnx.checker.check_model(back)


def check(paths):
    for p in paths:
        m = onnx.load(p)  # reads external data, relative to the model's folder
        onnx.checker.check_model(m)
        n = sum(1 for t in m.graph.initializer)
        ext = sum(1 for t in onnx.load(p, load_external_data=False).graph.initializer
                  if t.data_location == TensorProto.EXTERNAL)
        print(f"{p}: onnx.load + checker OK, {n} initializers ({ext} external)")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        check(sys.argv[2:])
        return
    os.makedirs(OUT, exist_ok=True)
    for v in range(11, 22):
        onnx.save(opset_model(v), os.path.join(OUT, f"opset{v}.onnx"))
    onnx.save(mobile_ops(), os.path.join(OUT, "mobile-ops.onnx"))
    onnx.save(contrib_function(), os.path.join(OUT, "contrib-function.onnx"))
    save_external(mlp(3), os.path.join(OUT, "external"), "mlp.onnx", True)
    save_external(mlp(4), os.path.join(OUT, "external-multi"), "mlp.onnx", False)
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
