#!/usr/bin/python3
"""custom_layer in PyTorch: the twin of examples/custom_layer.c. The gated feed-forward block
  y = x + W_out (silu(x' W_gate^T + b_gate) * (x' W_value^T + b_value)) + b_out,
  x' = rms_norm(x) = x / sqrt(mean(x^2 over the last dim) + 1e-6) * g
written from tensor operations, its gradients checked in f64 by torch.autograd.gradcheck and
gradgradcheck (eps 1e-6, atol 1e-5, rtol 1e-3, as tg_gradcheck_defaults) for rms_norm, swiglu
and the whole block (which must pass) and for rms_norm with 1/rms detached (which must fail),
on the shapes custom_layer.c checks. Then Linear(2, 32) -> block(32, hidden 64) -> Linear(32, 3)
(PyTorch's default init for every linear part, RMSNorm's gain ones) is trained with full-batch
Adam (lr 1e-2, 500 steps, then one pass that only measures) on the three-armed spiral (100
points per arm: radius r = i / 99, angle 4 (k + r) + 0.2 * normal). Prints the loss and training
accuracy every 100 steps, then
  accuracy on a fresh spiral: 0.XXXX
and, last, the wall time from the start of main (custom_layer.c prints none: compare.sh times
the whole C process). Exits 1 unless the checks come out as expected and the training accuracy
reaches 0.95.

  /usr/bin/python3 examples/pytorch/custom_layer.py [--steps N] [--lr X] [--hidden N]
      [--seed N] [--threads N]
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

CLASSES, PER_CLASS, WIDTH, RMS_EPS = 3, 100, 32, 1e-6
CHECK = {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3}


def rms_norm(x, g, eps=RMS_EPS):
    """RMSNorm over the last dim. x: [..., D], g: [D]."""
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps) * g


def swiglu(x, w_gate, b_gate, w_value, b_value):
    """silu(x W_gate^T + b_gate) * (x W_value^T + b_value). x: [N, D], weights [H, D]."""
    return F.silu(F.linear(x, w_gate, b_gate)) * F.linear(x, w_value, b_value)


def glu_block(x, norm, w_gate, b_gate, w_value, b_value, w_out, b_out):
    """y = x + W_out swiglu(rms_norm(x)) + b_out. x: [N, D] -> [N, D]."""
    h = swiglu(rms_norm(x, norm), w_gate, b_gate, w_value, b_value)
    return x + F.linear(h, w_out, b_out)


def rms_norm_detached(x, g):
    """The deliberate mistake: 1/rms detached from the graph (right values, wrong gradient)."""
    inv_rms = torch.rsqrt(x.square().mean(-1, keepdim=True) + RMS_EPS).detach()
    return x * inv_rms * g


def check(label, fn, shapes):
    """gradcheck and gradgradcheck of fn on random normal f64 inputs of the given shapes;
    prints both verdicts and returns True when both passed."""
    inputs = [torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in shapes]
    first = torch.autograd.gradcheck(fn, inputs, raise_exception=False, **CHECK)
    second = torch.autograd.gradgradcheck(fn, inputs, raise_exception=False, **CHECK)
    print(f"{label}\n  gradcheck:     {'passed' if first else 'FAILED'}\n"
          f"  gradgradcheck: {'passed' if second else 'FAILED'}")
    return first and second


def check_all():
    n, d, h = 3, 4, 5
    ok = check("rms_norm(x [3, 4], g [4])", rms_norm, [(n, d), (d,)])
    ok = check("swiglu(x [3, 4], W_gate [5, 4], b_gate [5], W_value [5, 4], b_value [5])",
               swiglu, [(n, d), (h, d), (h,), (h, d), (h,)]) and ok
    ok = check("glu_block(x [3, 4]) with all seven parameters", glu_block,
               [(n, d), (d,), (h, d), (h,), (h, d), (h,), (d, h), (d,)]) and ok
    ok = not check("rms_norm with 1/rms detached (a wrong gradient, which the checks must "
                   "catch)", rms_norm_detached, [(n, d), (d,)]) and ok
    return ok


class GluBlock(nn.Module):
    """The block as a module: its parameters initialized as PyTorch's Linear layers (RMSNorm's
    gain: ones), as glu_block_init does with tg_init_default_layer."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.norm = nn.Module()
        self.norm.weight = nn.Parameter(torch.ones(dim))
        self.gate, self.value = nn.Linear(dim, hidden), nn.Linear(dim, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x):
        return glu_block(x, self.norm.weight, self.gate.weight, self.gate.bias,
                         self.value.weight, self.value.bias, self.out.weight, self.out.bias)


class SpiralNet(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.embed = nn.Linear(2, WIDTH)
        self.block = GluBlock(WIDTH, hidden)
        self.head = nn.Linear(WIDTH, CLASSES)

    def forward(self, x):
        return self.head(self.block(self.embed(x)))


def spiral(rng):
    """PER_CLASS points of each arm: x float [300, 2], labels int64 [300]."""
    r = np.tile(np.arange(PER_CLASS) / (PER_CLASS - 1), CLASSES)
    k = np.repeat(np.arange(CLASSES), PER_CLASS)
    angle = 4.0 * (k + r) + 0.2 * rng.standard_normal(CLASSES * PER_CLASS)
    x = np.stack([r * np.sin(angle), r * np.cos(angle)], 1).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(k)


def accuracy(logits, y):
    return (logits.argmax(1) == y).float().mean().item()


def main(argv):
    ap = common.parser("custom_layer: the PyTorch twin of examples/custom_layer.c")
    ap.add_argument("--steps", type=int, default=500, help="full-batch Adam steps (500)")
    ap.add_argument("--lr", type=float, default=1e-2, help="learning rate (default 0.01)")
    ap.add_argument("--hidden", type=int, default=64, help="width of the gated unit (64)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = ap.parse_args(argv)
    common.set_threads(args.threads)
    t0 = common.now()
    torch.manual_seed(args.seed)

    checked = check_all()
    print("the gradient checks came out as expected" if checked
          else "a gradient check did NOT come out as expected")

    rng = np.random.default_rng(args.seed)
    x, y = spiral(rng)
    test_x, test_y = spiral(rng)  # the same arms, fresh noise
    model = SpiralNet(args.hidden)
    adam = torch.optim.Adam(model.parameters(), lr=args.lr)
    print("\nSpiralNet parameters (library layers and the custom block alike):")
    for name, p in model.named_parameters():
        print(f"  {name:<20s} f32{list(p.shape)}")
    acc = 0.0
    for step in range(args.steps + 1):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        acc = accuracy(logits, y)
        if step % 100 == 0 or step == args.steps:
            print(f"step {step:4d}  loss {loss.item():.4f}  train accuracy {acc:.4f}")
        if step == args.steps:
            break
        adam.zero_grad()
        loss.backward()
        adam.step()
    with torch.no_grad():
        print(f"accuracy on a fresh spiral: {accuracy(model(test_x), test_y):.4f}")
    common.print_wall_time(t0)
    return 0 if checked and acc >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
