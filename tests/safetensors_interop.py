#!/usr/bin/env python3
"""Checks that tapegrad's safetensors files and PyTorch's models interoperate, both ways.

Run by meson (suite `optim`) as: python3 safetensors_interop.py PATH/TO/st_interop
It exits 77 (meson: skipped) when torch or numpy cannot be imported.

1. tapegrad -> PyTorch: st_interop writes its seeded model (Linear, BatchNorm1d with running
   statistics and an int64 num_batches_tracked, Linear); this script reads the file with json
   and numpy only, loads it into the equivalent nn.Module with load_state_dict(strict=True),
   and compares the eval-mode logits on the same input with the ones st_interop printed.
2. PyTorch -> tapegrad: this script writes a differently initialized Net's state_dict as
   safetensors (json + numpy, names sorted, header padded to 8 bytes as the safetensors
   library does), st_interop loads it and prints its logits, which must match PyTorch's.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    sys.exit(77)

DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}
NAMES = {v: k for k, v in DTYPES.items()}


class Net(torch.nn.Module):
    """The PyTorch twin of st_interop's model."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(5, 8)
        self.bn = torch.nn.BatchNorm1d(8)
        self.fc2 = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def read_safetensors(path):
    """name -> numpy array, checking the layout rules the format sets."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    header.pop("__metadata__", None)
    out, spans = {}, []
    for name, info in header.items():
        dtype = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        assert end - begin == count * dtype.itemsize, name
        spans.append((begin, end))
        out[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(info["shape"])
    position = 0
    for begin, end in sorted(spans):
        assert begin == position, f"gap or overlap at {begin}"
        position = end
    assert position == len(data), "the data section is not covered exactly"
    return out


def write_safetensors(path, tensors):
    """Writes name -> numpy array as the safetensors library would (sorted names)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        a = np.asarray(a, dtype=a.dtype.newbyteorder("<"), order="C")  # keeps 0-d arrays 0-d
        blob = a.tobytes()
        header[name] = {"dtype": NAMES[np.dtype(a.dtype.str)], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def run_helper(helper, mode, path):
    result = subprocess.run([helper, mode, path], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"st_interop {mode} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def logits_of(net, x):
    net.eval()
    with torch.no_grad():
        return net(torch.tensor(x, dtype=torch.float32)).numpy()


def compare(what, got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    err = np.max(np.abs(got - want))
    print(f"{what}: max |difference| {err:.3g}")
    if not err <= 1e-5 * max(1.0, np.max(np.abs(want))):
        sys.exit(f"{what}: logits differ\n got {got}\nwant {want}")


def main():
    helper = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        # 1. tapegrad writes, PyTorch reads.
        c_file = os.path.join(tmp, "from_tapegrad.safetensors")
        out = run_helper(helper, "write", c_file)
        state = read_safetensors(c_file)
        net = Net()
        missing = set(net.state_dict()) ^ set(state)
        if missing:
            sys.exit(f"names differ from PyTorch's state_dict: {sorted(missing)}")
        for name, value in net.state_dict().items():
            if state[name].dtype != value.numpy().dtype or state[name].shape != value.shape:
                sys.exit(f"{name}: {state[name].dtype}{state[name].shape} in the file, "
                         f"{value.dtype}{tuple(value.shape)} in PyTorch")
        net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()},
                            strict=True)
        assert int(net.bn.num_batches_tracked) == out["num_batches_tracked"] == 7
        compare("tapegrad -> PyTorch", logits_of(net, out["input"]), out["logits"])

        # 2. PyTorch writes, tapegrad reads.
        torch.manual_seed(0)
        twin = Net()
        with torch.no_grad():
            twin.bn.weight.uniform_(0.5, 1.5)
            twin.bn.bias.uniform_(-0.5, 0.5)
            twin.bn.running_mean.uniform_(-1.0, 1.0)
            twin.bn.running_var.uniform_(0.5, 2.0)
            twin.bn.num_batches_tracked.fill_(3)
        py_file = os.path.join(tmp, "from_pytorch.safetensors")
        write_safetensors(py_file, {k: v.numpy() for k, v in twin.state_dict().items()})
        out = run_helper(helper, "read", py_file)
        assert out["num_batches_tracked"] == 3
        compare("PyTorch -> tapegrad", out["logits"], logits_of(twin, out["input"]))


if __name__ == "__main__":
    main()
