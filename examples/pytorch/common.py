"""What the PyTorch twins of the examples share: the MNIST reader (the bundled gzipped IDX files),
the thread setting, a batch former that does what tapegrad's loader does (index list, shuffle,
pad, scale, normalize, per batch), a port of tapegrad's random generator for the few draws that
should be the same as the C example's, and the wall clock.

Run the scripts with Debian's python3-torch: /usr/bin/python3 (the `python3` on PATH may be
another interpreter without torch).
"""
import argparse
import gzip
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MNIST_DIR = os.path.join(REPO, "data", "mnist")

# ---- threads -----------------------------------------------------------------------------------


def default_threads():
    """tapegrad's default thread count (tg_get_num_threads): OMP_NUM_THREADS when set to a
    positive number, else the number of online processors."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        n = 0
    return n if n >= 1 else (os.cpu_count() or 1)


def add_threads_option(ap):
    """--threads N, defaulting to what the C examples use when not told (default_threads())."""
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (default: OMP_NUM_THREADS, else the processor count, "
                         "as tapegrad)")


def set_threads(n):
    """torch.set_num_threads(n), or the C examples' default when n < 1; returns the count."""
    n = n if n >= 1 else default_threads()
    torch.set_num_threads(n)
    return n


def parser(description):
    """An argparse parser with the option every script takes (--threads)."""
    ap = argparse.ArgumentParser(description=description)
    add_threads_option(ap)
    return ap


def now():
    """Seconds on a monotonic clock (as the C examples' CLOCK_MONOTONIC)."""
    return time.perf_counter()


def print_wall_time(t0):
    """The line compare.sh reads for the examples whose C program prints no time (there it
    times the whole C process): seconds since t0, taken at the start of main, after the
    imports (so the interpreter's start-up and `import torch` are not counted)."""
    print(f"wall time {now() - t0:.3f} s (from the start of main, after importing torch)")


# ---- MNIST -------------------------------------------------------------------------------------


def read_idx(path):
    """The array of an IDX file of unsigned bytes (gzip or plain), shaped by its header."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or not 1 <= ndim <= 4:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, the header says {np.prod(dims)}")
    return data.reshape(dims)


def load_mnist(folder, train):
    """(images uint8 [n, 1, 28, 28], labels int64 [n]) from the folder's train- or t10k- files
    (train-images-idx3-ubyte.gz etc.; plain files too), as tg_mnist_load."""
    prefix = "train" if train else "t10k"

    def path(kind):
        p = os.path.join(folder, f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte")
        return p + ".gz" if os.path.exists(p + ".gz") else p

    x = read_idx(path("images")).reshape(-1, 1, 28, 28)
    y = read_idx(path("labels")).astype(np.int64)
    if len(x) != len(y):
        raise ValueError(f"{folder}: {len(x)} images but {len(y)} labels")
    return torch.from_numpy(x.copy()), torch.from_numpy(y)


# ---- batches -----------------------------------------------------------------------------------


class Loader:
    """tg_loader's batches: the examples `indices` of images (uint8 [n, C, H, W]) and labels,
    `batch` at a time, in order or in a new shuffle every epoch (drawn from the torch generator
    gen), the last short batch dropped when drop_last. Each batch is formed when asked for, as
    the C loader forms it: zero padding by pad, then pixel * scale, then (x - mean) / std when
    normalize is given as (mean, std) (one channel or per channel)."""

    def __init__(self, images, labels, indices, batch, shuffle=False, drop_last=False,
                 pad=0, scale=1.0 / 255.0, normalize=None, gen=None):
        self.images, self.labels = images, labels
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.batch, self.shuffle, self.drop_last = batch, shuffle, drop_last
        self.pad, self.scale, self.gen = pad, scale, gen
        self.normalize = None
        if normalize is not None:
            c = images.shape[1]
            mean = torch.tensor(normalize[0], dtype=torch.float32).reshape(-1, 1, 1)
            std = torch.tensor(normalize[1], dtype=torch.float32).reshape(-1, 1, 1)
            self.normalize = (mean.expand(c, 1, 1), std.expand(c, 1, 1))

    def num_examples(self):
        n = len(self.indices)
        return n - n % self.batch if self.drop_last else n

    def num_batches(self):
        n = len(self.indices)
        return n // self.batch if self.drop_last else (n + self.batch - 1) // self.batch

    def __iter__(self):
        order = self.indices
        if self.shuffle:
            order = order[torch.randperm(len(order), generator=self.gen)]
        for start in range(0, self.num_examples(), self.batch):
            idx = order[start:start + self.batch]
            x = self.images[idx].float()
            if self.pad:
                x = F.pad(x, (self.pad,) * 4)
            x.mul_(self.scale)
            if self.normalize is not None:
                x.sub_(self.normalize[0]).div_(self.normalize[1])
            yield x, self.labels[idx]


# ---- tapegrad's generator ------------------------------------------------------------------------

MASK64 = (1 << 64) - 1


class TgRng:
    """tg_rng (src/tensor/rng.c) in Python: xoshiro256** seeded through splitmix64, uniform
    doubles from the top 53 bits, unbiased integers below n by rejection, Box-Muller normals with
    a spare. Slow (pure Python): for the few draws that should equal the C example's."""

    def __init__(self, seed):
        x = seed & MASK64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            self.s.append(z ^ (z >> 31))
        self.spare = None

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK64

    def u64(self):
        s = self.s
        result = (self._rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.u64() >> 11) * 2.0 ** -53

    def below(self, n):
        if n == 0:
            return 0
        limit = MASK64 - MASK64 % n
        while True:
            x = self.u64()
            if x < limit:
                return x % n

    def normal(self):
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        r = math.sqrt(-2.0 * math.log(u1))
        self.spare = r * math.sin(2.0 * math.pi * u2)
        return r * math.cos(2.0 * math.pi * u2)
