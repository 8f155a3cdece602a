#!/usr/bin/python3
"""The workloads of tapegrad-bench (bench/tapegrad-bench.c) in PyTorch, for bench/compare.sh.

Run with Debian's python3-torch: /usr/bin/python3 bench/pytorch_reference.py [--threads N]
[NAME...]. Same workload names, models, batch sizes, optimizers, synthetic data shapes and
timing rule as the C program (warm up, size rounds to a fixed time, keep the fastest round);
each result line is `<result> pytorch=<value> unit=<unit> better=<higher|lower>` plus details.
Workloads the C side has but PyTorch has no counterpart for (arena) print nothing.

`--mnist-train` is the child process of the mnist workload: seed 000's CNN trained on the
bundled MNIST with the recipe of examples/mnist (batch 32, Adam lr 1e-2 stepped to 1e-3, 1e-4,
1e-5 at epochs 5, 15, 18, inputs (x/255 - 0.5)/0.5, shuffled, test accuracy after every epoch).
"""
import argparse
import gzip
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_DATA = os.path.join(REPO, "data", "mnist")

# ---- timing ------------------------------------------------------------------------------------

TRAIN_TIMING = (0.25, 5)  # (seconds per round, rounds), as train_timing in tapegrad-bench.c
OP_TIMING = (0.05, 5)     # as op_timing


def time_best(fn, timing):
    """The fastest round's seconds per call of fn: warm-up calls (at least three, for at least
    half a round) size the rounds by the fastest of them, then the rounds run (tapegrad-bench.c's
    time_best)."""
    round_s, rounds = timing
    start = time.perf_counter()
    i, fastest = 0, float("inf")
    while i < 3 or time.perf_counter() - start < round_s / 2:
        t0 = time.perf_counter()
        fn()
        fastest = min(fastest, time.perf_counter() - t0)
        i += 1
    calls = int(max(1.0, min(round_s / max(fastest, 1e-9), 1e7)))
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def result(name, value, unit, better, **details):
    """Prints one result line."""
    extra = "".join(f" {k}={v}" for k, v in details.items())
    print(f"{name} pytorch={value} unit={unit} better={better}{extra}", flush=True)


# ---- the nets of the notes (as in tapegrad-bench.c) --------------------------------------------


def seed000():
    """Conv 1->16 k3 s2, ReLU, Conv 16->8 k3 s2, ReLU, Conv 8->8 k3, ReLU, Flatten,
    Linear 128->64, ReLU, Dropout(0.5), Linear 64->10. [N,1,28,28]"""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, 2), nn.ReLU(), nn.Conv2d(16, 8, 3, 2), nn.ReLU(),
        nn.Conv2d(8, 8, 3, 1), nn.ReLU(), nn.Flatten(), nn.Linear(128, 64), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(64, 10))


def lenet5():
    """Conv 1->6 k5, tanh, AvgPool 2, Conv 6->16 k5, tanh, AvgPool 2, Flatten, Linear 400->120,
    tanh, Linear 120->84, tanh, Linear 84->10. [N,1,32,32]"""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84),
        nn.Tanh(), nn.Linear(84, 10))


def mytorch():
    """Conv 1->32 k3 s2 p1, MaxPool 3/2, Conv 32->64 k3 s2 p1, BatchNorm2d, ReLU, AvgPool 3,
    Flatten, Linear 64->10. [N,1,28,28]"""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 2, 1), nn.MaxPool2d(3, 2),
        nn.Sequential(nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.ReLU()),
        nn.AvgPool2d(3), nn.Flatten(), nn.Linear(64, 10))


class ResBlock(nn.Module):
    """relu(conv2(relu(conv1(x))) + shortcut(x)); the shortcut a 1x1 convolution when the shape
    changes, else the identity."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet(nn.Module):
    """seed 003's ResNet for CIFAR-10: stem Conv 3->16 k3 p1 (no activation), three stages of
    two residual blocks (16, 32 stride 2, 64 stride 2), global average pooling, Linear 64->10."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1)
        self.layer1 = nn.Sequential(ResBlock(16, 16, 1), ResBlock(16, 16, 1))
        self.layer2 = nn.Sequential(ResBlock(16, 32, 2), ResBlock(32, 32, 1))
        self.layer3 = nn.Sequential(ResBlock(32, 64, 2), ResBlock(64, 64, 1))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(x.mean(dim=(2, 3)))


# (name, net, batch, channels, size, optimizer, lr, reduction), as train_specs
TRAIN_SPECS = [
    ("train_seed000", seed000, 32, 1, 28, torch.optim.Adam, 1e-2, "mean"),
    ("train_lenet5", lenet5, 64, 1, 32, torch.optim.SGD, 0.1, "mean"),
    ("train_mytorch", mytorch, 10, 1, 28, torch.optim.AdamW, 1e-2, "sum"),
    ("train_resnet", ResNet, 16, 3, 32, torch.optim.SGD, 1e-2, "mean"),
]


# Distinct synthetic batches a training workload cycles through, as TRAIN_BATCHES in
# tapegrad-bench.c: one batch repeated is learnt within a few hundred steps, after which the
# gradients underflow to subnormal floats and the steps time the CPU's slow path for them.
TRAIN_BATCHES = 64


def bench_train(spec):
    """Training images per second: forward, cross-entropy, backward, optimizer step,
    zero_grad, cycling through TRAIN_BATCHES synthetic batches held in memory."""
    name, build, batch, channels, size, optim, lr, reduction = spec
    torch.manual_seed(1)
    model = build()
    model.train()
    opt = optim(model.parameters(), lr=lr)
    data = [(torch.randn(batch, channels, size, size), torch.randint(0, 10, (batch,)))
            for _ in range(TRAIN_BATCHES)]
    losses = []

    def step():
        x, y = data[len(losses) % TRAIN_BATCHES]
        loss = F.cross_entropy(model(x), y, reduction=reduction)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())

    s = time_best(step, TRAIN_TIMING)
    result(name, f"{batch / s:.1f}", "img/s", "higher", batch=batch, step_ms=f"{s * 1e3:.3f}",
           steps=len(losses), params=sum(p.numel() for p in model.parameters()),
           loss_first=f"{losses[0]:.4f}", loss_last=f"{losses[-1]:.4f}")


# ---- conv2d, batchnorm, cross_entropy: forward + backward --------------------------------------

# (layer, N, C, H, W, OC, k, stride, pad, input_grad), as conv_shapes: a net's first layer gets
# no input gradient
CONV_SHAPES = [
    ("seed000.backbone.0", 32, 1, 28, 28, 16, 3, 2, 0, False),
    ("seed000.backbone.2", 32, 16, 13, 13, 8, 3, 2, 0, True),
    ("seed000.backbone.4", 32, 8, 6, 6, 8, 3, 1, 0, True),
    ("lenet5.conv1", 64, 1, 32, 32, 6, 5, 1, 0, False),
    ("lenet5.conv2", 64, 6, 14, 14, 16, 5, 1, 0, True),
    ("mytorch.0", 10, 1, 28, 28, 32, 3, 2, 1, False),
    ("mytorch.2.conv", 10, 32, 6, 6, 64, 3, 2, 1, True),
    ("resnet.stem", 16, 3, 32, 32, 16, 3, 1, 1, False),
    ("resnet.layer1.x.convN", 16, 16, 32, 32, 16, 3, 1, 1, True),
    ("resnet.layer2.0.conv1", 16, 16, 32, 32, 32, 3, 2, 1, True),
    ("resnet.layer2.0.shortcut", 16, 16, 32, 32, 32, 1, 2, 0, True),
    ("resnet.layer2.x.convN", 16, 32, 16, 16, 32, 3, 1, 1, True),
    ("resnet.layer3.0.conv1", 16, 32, 16, 16, 64, 3, 2, 1, True),
    ("resnet.layer3.0.shortcut", 16, 32, 16, 16, 64, 1, 2, 0, True),
    ("resnet.layer3.x.convN", 16, 64, 8, 8, 64, 3, 1, 1, True),
]


def leaf(*shape, requires_grad=True):
    """A normal(0, 1) f32 leaf, requiring grad unless told not to."""
    return torch.randn(*shape).requires_grad_(requires_grad)


def fwd_bwd(fn, seed, leaves):
    """A call: y = fn(), backward with seed (None: a scalar y), the leaves' grads zeroed."""
    def call():
        fn().backward(seed)
        for t in leaves:
            t.grad.zero_()
    return call


def bench_conv2d():
    """Microseconds per conv2d forward + backward (grads of weight, bias and, but for a net's
    first layer, x)."""
    torch.manual_seed(2)
    for layer, n, c, h, w, oc, k, stride, pad, input_grad in CONV_SHAPES:
        x = leaf(n, c, h, w, requires_grad=input_grad)
        wt, b = leaf(oc, c, k, k), leaf(oc)
        oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        seed = torch.ones(n, oc, oh, ow)
        grads = [x, wt, b] if input_grad else [wt, b]
        s = time_best(fwd_bwd(lambda: F.conv2d(x, wt, b, stride, pad), seed, grads), OP_TIMING)
        flops = (3 if input_grad else 2) * 2.0 * n * oc * oh * ow * c * k * k
        result(f"conv2d.{layer}", f"{s * 1e6:.1f}", "us", "lower", x=f"{n}x{c}x{h}x{w}", oc=oc,
               k=k, stride=stride, pad=pad, input_grad=int(input_grad),
               gflops=f"{flops / s / 1e9:.2f}")


BN_SHAPES = [(10, 64, 3, 3), (16, 16, 32, 32), (32, 64, 16, 16), (64, 128, 8, 8)]


def bench_batchnorm():
    """Microseconds per batch norm (training) forward + backward to x, weight and bias."""
    torch.manual_seed(3)
    for shape in BN_SHAPES:
        c = shape[1]
        x = leaf(*shape)
        weight, bias = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
        rmean, rvar = torch.zeros(c), torch.ones(c)
        fn = lambda: F.batch_norm(x, rmean, rvar, weight, bias, True, 0.1, 1e-5)
        s = time_best(fwd_bwd(fn, torch.ones(shape), [x, weight, bias]), OP_TIMING)
        result("batchnorm." + "x".join(map(str, shape)), f"{s * 1e6:.1f}", "us", "lower")


CE_SHAPES = [(10, 10), (32, 10), (64, 10), (256, 100), (1024, 1000)]


def bench_cross_entropy():
    """Microseconds per cross-entropy (mean) forward + backward to the logits."""
    torch.manual_seed(4)
    for n, c in CE_SHAPES:
        logits, labels = leaf(n, c), torch.randint(0, c, (n,))
        s = time_best(fwd_bwd(lambda: F.cross_entropy(logits, labels), None, [logits]),
                      OP_TIMING)
        result(f"cross_entropy.{n}x{c}", f"{s * 1e6:.1f}", "us", "lower")


# ---- matmul, overhead --------------------------------------------------------------------------

MATMUL_SIZES = [64, 128, 256, 512, 1024, 2048]


def bench_matmul():
    """GFLOP/s of f32 torch.mm on square operands (forward only, no grad)."""
    torch.manual_seed(42)
    with torch.no_grad():
        for n in MATMUL_SIZES:
            a, b = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1
            s = time_best(lambda: torch.mm(a, b), OP_TIMING)
            result(f"matmul.{n}", f"{2.0 * n ** 3 / s / 1e9:.1f}", "GFLOP/s", "higher")


CHAIN_LEN, CHAIN_REPS = 100000, 3


def bench_overhead():
    """ns per op, forward + backward, of a chain of CHAIN_LEN ops on a 1-element f32 tensor
    cycling *0.9, +0.1, tanh (tapegrad-bench's mixed chain); the fastest of CHAIN_REPS after a
    warm-up."""
    x = torch.full((1,), 0.5, requires_grad=True)
    best = None
    for rep in range(CHAIN_REPS + 1):
        t0 = time.perf_counter()
        y = x
        for i in range(CHAIN_LEN):
            r = i % 3
            y = y * 0.9 if r == 0 else (y + 0.1 if r == 1 else torch.tanh(y))
        t1 = time.perf_counter()
        y.backward()
        t2 = time.perf_counter()
        del y
        x.grad = None
        if rep > 0 and (best is None or t2 - t0 < best[0] + best[1]):
            best = (t1 - t0, t2 - t1)
    fwd, bwd = (v / CHAIN_LEN * 1e9 for v in best)
    result("overhead", f"{fwd + bwd:.1f}", "ns/op", "lower", ops=CHAIN_LEN,
           forward_ns=f"{fwd:.1f}", backward_ns=f"{bwd:.1f}")


# ---- mnist: the same training as examples/mnist, and its peak memory ---------------------------


def read_idx(path):
    """The array of an IDX file of unsigned bytes (gzip or plain)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(data, train):
    """(images uint8 [n, 1, 28, 28], labels int64 [n]) from the folder's train- or t10k- files."""
    prefix = "train" if train else "t10k"
    x = read_idx(os.path.join(data, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data, f"{prefix}-labels-idx1-ubyte.gz"))
    return x.reshape(-1, 1, 28, 28), y.astype(np.int64)


def mnist_train(data, epochs, seed):
    """examples/mnist's default run: seed 000's CNN, batch 32, Adam lr 1e-2 with the notes' lr
    table {5: 1e-3, 15: 1e-4, 18: 1e-5} stepped per epoch, mean cross-entropy, shuffled batches
    normalized as (x/255 - 0.5)/0.5 when formed, test accuracy after every epoch (batches of
    1,000, eval mode, no grad). Returns the final test accuracy."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    xtr, ytr = load_mnist(data, True)
    xte, yte = load_mnist(data, False)
    model = seed000()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    table = {5: 1e-3, 15: 1e-4, 18: 1e-5}
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: max([v for k, v in table.items() if k <= e], default=1e-2) / 1e-2)

    def batch(x, idx):
        return (torch.from_numpy(x[idx].astype(np.float32)) / 255.0 - 0.5) / 0.5

    acc = 0.0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(xtr))
        loss_sum, train_correct = 0.0, 0
        for i in range(0, len(order), 32):
            idx = order[i:i + 32]
            labels = torch.from_numpy(ytr[idx])
            logits = model(batch(xtr, idx))
            loss = F.cross_entropy(logits, labels)
            loss.backward()
            opt.step()
            opt.zero_grad()
            loss_sum += loss.item() * len(idx)
            train_correct += (logits.argmax(1) == labels).sum().item()
        sched.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(xte), 1000):
                idx = np.arange(i, min(i + 1000, len(xte)))
                correct += (model(batch(xte, idx)).argmax(1).numpy() == yte[idx]).sum()
        acc = correct / len(xte)
        print(f"epoch {epoch + 1}/{epochs}  loss {loss_sum / len(xtr):.4f}  train accuracy "
              f"{train_correct / len(xtr):.4f}  test accuracy {acc:.4f}  "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    print(f"final test accuracy: {acc:.4f} ({epochs} epochs, {time.perf_counter() - t0:.1f} s)")
    return acc


def mnist_epochs():
    """TAPEGRAD_BENCH_MNIST_EPOCHS, default 1, as tapegrad-bench's mnist workload."""
    return max(1, int(os.environ.get("TAPEGRAD_BENCH_MNIST_EPOCHS", "1")))


def bench_mnist(threads):
    """Peak RSS (ru_maxrss from wait4) and wall time of the mnist training in a child process,
    whose output is discarded."""
    epochs = mnist_epochs()
    cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(threads), "--mnist-train",
           "--epochs", str(epochs)]
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"mnist: {' '.join(cmd)} failed (status {status})")
    result("mnist.peak_rss", f"{usage.ru_maxrss / 1024:.1f}", "MiB", "lower", epochs=epochs)
    result("mnist.seconds", f"{seconds:.2f}", "s", "lower", epochs=epochs)


# ---- the table and the command line ------------------------------------------------------------

WORKLOADS = {spec[0]: (lambda threads, spec=spec: bench_train(spec)) for spec in TRAIN_SPECS}
WORKLOADS.update({
    "conv2d": lambda threads: bench_conv2d(),
    "matmul": lambda threads: bench_matmul(),
    "batchnorm": lambda threads: bench_batchnorm(),
    "cross_entropy": lambda threads: bench_cross_entropy(),
    "overhead": lambda threads: bench_overhead(),
    "arena": lambda threads: None,  # tapegrad's arena only
    "mnist": bench_mnist,
})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="torch.set_num_threads (default: the core count)")
    ap.add_argument("--mnist-train", action="store_true",
                    help="run the mnist training itself (the mnist workload's child)")
    ap.add_argument("--epochs", type=int, default=20, help="epochs of --mnist-train")
    ap.add_argument("--data", default=MNIST_DATA, help="MNIST folder of --mnist-train")
    ap.add_argument("names", nargs="*", metavar="NAME", help=", ".join(WORKLOADS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.mnist_train:
        mnist_train(args.data, args.epochs, seed=1)
        return
    unknown = [n for n in args.names if n not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload {unknown[0]}")
    print(f"pytorch-reference threads={torch.get_num_threads()} torch={torch.__version__}",
          flush=True)
    for name in args.names or WORKLOADS:
        WORKLOADS[name](args.threads)


if __name__ == "__main__":
    main()
