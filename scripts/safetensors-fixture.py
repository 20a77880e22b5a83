#!/usr/bin/env python3
"""Writes test/fixtures/safetensors/python.safetensors with Python's `safetensors` library.

The file is written by the reference implementation (not by this project's writer), so
test/io/safetensors.test.ts checks that src/io/safetensors.ts reads what the rest of the
world writes: the library's own tensor order and padding, every dtype the project reads
(BF16 included, through ml_dtypes, the dtype PyTorch checkpoints use), a scalar, an empty
tensor, and metadata. `python.json` lists what was written, tensor by tensor: dtype, shape
and the values as numbers (strings for 64-bit integers, which JSON numbers cannot hold, and
for infinities and NaN).

Not part of the build or the tests: run it by hand when the fixture must change. safetensors
is not a Debian package; in a virtual environment:

    /usr/bin/python3 -m venv /tmp/stvenv
    /tmp/stvenv/bin/pip install safetensors numpy ml-dtypes
    /tmp/stvenv/bin/python scripts/safetensors-fixture.py
"""
import json
import math
import os

import ml_dtypes
import numpy as np
import safetensors
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "safetensors")

inf = float("inf")
nan = float("nan")

# Values chosen to exercise each format: signed zero, rounding (1/3), the largest finite
# value, subnormals, infinities, and (for integers) both ends of the range.
TENSORS = {
    "blocks.0.mlp.fc1.weight": np.array(
        [[0.0, -0.0, 1.5], [-3.25, 1 / 3, 3.4028234663852886e38], [1e-40, -inf, 7.0]],
        dtype=np.float32,
    ),
    "blocks.0.mlp.fc1.bias": np.array([0.1, -2.0, 2.0**-1074], dtype=np.float64),
    "norm.weight": np.array([1.0, -2.0, 1 / 3, 65504.0, 2.0**-24, inf, -0.0, 0.5], dtype=np.float16),
    "pos_embed": np.array(
        [[[1.0, -1.5], [3.140625, 1e-3]], [[3.3895313892515355e38, -0.0], [inf, 2.0**-133]]],
        dtype=ml_dtypes.bfloat16,
    ),
    "head.bias": np.array([nan, -7.75], dtype=ml_dtypes.bfloat16),
    "index": np.array([0, -1, 2**62 + 7, -(2**63), 2**63 - 1], dtype=np.int64),
    "counts": np.array([[-(2**31), 2**31 - 1], [3, -4]], dtype=np.int32),
    "pixels": np.array([0, 255, 128], dtype=np.uint8),
    "mask": np.array([True, False, True], dtype=np.bool_),
    "num_batches_tracked": np.array(42, dtype=np.int64),
    "empty": np.zeros((0, 4), dtype=np.float32),
}


def as_json(value):
    """A value as JSON can hold it exactly (floats of every width are exact in float64)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def main():
    os.makedirs(OUT, exist_ok=True)
    metadata = {"format": "pt", "writer": f"safetensors {safetensors.__version__} (Python)"}
    save_file(TENSORS, os.path.join(OUT, "python.safetensors"), metadata=metadata)
    expected = {"metadata": metadata, "tensors": {}}
    for name, arr in TENSORS.items():
        flat = arr.reshape(-1)
        if arr.dtype.kind == "f" or arr.dtype == ml_dtypes.bfloat16:
            values = [as_json(float(v)) for v in flat.astype(np.float64)]
        elif arr.dtype == np.bool_:
            values = [as_json(v) for v in flat.tolist()]
        else:
            values = [as_json(int(v)) for v in flat.tolist()]
        expected["tensors"][name] = {
            "dtype": str(arr.dtype),
            "shape": list(arr.shape),
            "values": values,
        }
    with open(os.path.join(OUT, "python.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
