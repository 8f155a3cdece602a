#!/usr/bin/python3
"""linear_regression in PyTorch: the twin of examples/linear_regression.c, the smallest training
loop. A linear map x [32, 784] -> [32, 10] (w = 0.01 * normal [784, 10], b = 0) is fitted to
targets x w_true + 0.5 (w_true = 0.05 * normal) on a fresh batch of inputs uniform in [-1, 1)
every step: mean squared error, backward, a plain SGD update (lr 0.5) written out over the
parameters, zeroed grads; 200 steps. Prints the loss every 50 steps and
  loss A -> B
and, last, the wall time from the start of main (linear_regression.c prints none: compare.sh
times the whole C process). Exits 1 unless the loss falls by a factor of 100.

  /usr/bin/python3 examples/pytorch/linear_regression.py [--threads N]
"""
import sys

import torch

import common

BATCH, IN, OUT, STEPS, LR = 32, 784, 10, 200, 0.5


def main(argv):
    ap = common.parser("linear_regression: the PyTorch twin of examples/linear_regression.c")
    args = ap.parse_args(argv)
    common.set_threads(args.threads)
    t0 = common.now()
    torch.manual_seed(42)
    w = (0.01 * torch.randn(IN, OUT)).requires_grad_()
    b = torch.zeros(OUT, requires_grad=True)
    w_true = 0.05 * torch.randn(IN, OUT)

    first = last = 0.0
    for step in range(STEPS):
        x = torch.rand(BATCH, IN) * 2.0 - 1.0
        target = x @ w_true + 0.5
        loss = (x @ w + b - target).square().mean()
        loss.backward()
        with torch.no_grad():  # the whole optimizer of this example
            for p in (w, b):
                p -= LR * p.grad
                p.grad.zero_()
        last = loss.item()
        if step == 0:
            first = last
        if step % 50 == 0 or step == STEPS - 1:
            print(f"step {step:3d}  loss {last:.6f}")
    print(f"loss {first:.4f} -> {last:.6f}")
    common.print_wall_time(t0)
    return 0 if last < first / 100 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
