#!/usr/bin/python3
"""lstm in PyTorch: the twin of examples/lstm.c. An LSTMCell(20, 32) and a Linear(32, 10)
(PyTorch's default init) learn to add two L-digit numbers digit by digit, least significant
first: at step t the input is one-hot(a_t) next to one-hot(b_t), the target digit t of a + b,
and one more step with both digits 0 yields the final carry (T = L + 1 steps). L is drawn anew
for every batch (1..8), and the Python loop runs the cell T times: a graph of a different size
at every step. Adam lr 1e-2 on the mean cross-entropy over all T * 32 digits of a batch, the
gradient clipped to global norm 1, 1,500 batches of 32. Then the whole-sum accuracy on 500 fresh
additions for every length 1..16, and
  digit accuracy at the trained lengths: 0.XXXX
and, last, the wall time from the start of main (lstm.c prints none: compare.sh times the whole
C process). Exits 1 unless that digit accuracy reaches 0.9.

  /usr/bin/python3 examples/pytorch/lstm.py [--steps N] [--batch N] [--hidden N] [--lr X]
      [--max-digits N] [--seed N] [--threads N]
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

DIGITS, INPUTS, MAX_STEPS, EVAL_PAIRS, BEYOND = 10, 20, 64, 500, 8


def make_batch(n, digits, rng):
    """(inputs float [T, n, 20], targets int64 [T, n]) for n additions of `digits`-digit
    numbers, T = digits + 1, least significant digit first (lstm.c's batch_make)."""
    steps = digits + 1
    a = np.zeros((steps, n), np.int64)
    b = np.zeros((steps, n), np.int64)
    a[:digits] = rng.integers(0, DIGITS, (digits, n))
    b[:digits] = rng.integers(0, DIGITS, (digits, n))
    targets = np.empty((steps, n), np.int64)
    carry = np.zeros(n, np.int64)
    for t in range(steps):
        s = a[t] + b[t] + carry
        targets[t], carry = s % DIGITS, s // DIGITS
    inputs = np.zeros((steps, n, INPUTS), np.float32)
    rows = np.arange(n)
    for t in range(steps):
        inputs[t, rows, a[t]] = 1.0
        inputs[t, rows, DIGITS + b[t]] = 1.0
    return torch.from_numpy(inputs), torch.from_numpy(targets)


class Adder(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.lstm = nn.LSTMCell(INPUTS, hidden)
        self.out = nn.Linear(hidden, DIGITS)

    def forward(self, inputs):
        """inputs [T, n, 20] -> logits [T * n, 10], step-major like the targets."""
        state, logits = None, []
        for x in inputs:
            state = self.lstm(x, state)  # None: zero states
            logits.append(self.out(state[0]))
        return torch.cat(logits, 0)


def score(logits, targets):
    """(correct digits, rows whose every digit is correct)."""
    ok = (logits.argmax(1) == targets.reshape(-1)).reshape(targets.shape)
    return ok.sum().item(), ok.all(0).sum().item()


def main(argv):
    ap = common.parser("lstm: the PyTorch twin of examples/lstm.c")
    ap.add_argument("--steps", type=int, default=1500, help="training batches (default 1500)")
    ap.add_argument("--batch", type=int, default=32, help="pairs per batch (default 32)")
    ap.add_argument("--hidden", type=int, default=32, help="LSTM hidden size (default 32)")
    ap.add_argument("--lr", type=float, default=1e-2, help="Adam lr (default 0.01)")
    ap.add_argument("--max-digits", type=int, default=8, help="longest trained (default 8)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = ap.parse_args(argv)
    if args.max_digits < 1 or args.max_digits + BEYOND + 1 > MAX_STEPS:
        sys.exit(f"lstm: --max-digits must be in 1..{MAX_STEPS - BEYOND - 1}")
    common.set_threads(args.threads)
    t0 = common.now()

    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    model = Adder(args.hidden)
    adam = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(model)
    print(f"adding numbers of 1..{args.max_digits} digits, least significant first; "
          f"{args.steps} batches of {args.batch}")

    digits_ok = sums_ok = digits_seen = sums_seen = 0
    loss_sum = 0.0
    for step in range(1, args.steps + 1):
        digits = 1 + int(rng.integers(0, args.max_digits))
        inputs, targets = make_batch(args.batch, digits, rng)
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets.reshape(-1))
        adam.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        adam.step()
        d_ok, s_ok = score(logits, targets)
        digits_ok += d_ok
        sums_ok += s_ok
        digits_seen += targets.numel()
        sums_seen += args.batch
        loss_sum += loss.item()
        if step % 100 == 0 or step == args.steps:
            window = 100 if step % 100 == 0 else step % 100
            print(f"step {step:4d}  loss {loss_sum / window:.4f}  digit accuracy "
                  f"{digits_ok / digits_seen:.4f}  sum accuracy {sums_ok / sums_seen:.4f}  "
                  f"(last batch: {digits} digits)", flush=True)
            digits_ok = sums_ok = digits_seen = sums_seen = 0
            loss_sum = 0.0

    print(f"\nwhole-sum accuracy on {EVAL_PAIRS} fresh additions per length (trained on "
          f"1..{args.max_digits} digits):")
    trained = 0.0
    with torch.no_grad():
        for digits in range(1, args.max_digits + BEYOND + 1):
            inputs, targets = make_batch(EVAL_PAIRS, digits, rng)
            d_ok, s_ok = score(model(inputs), targets)
            digit_acc, sum_acc = d_ok / targets.numel(), s_ok / EVAL_PAIRS
            print(f"  length {digits:2d}: {sum_acc:.4f}  (digits right: {digit_acc:.4f})"
                  f"{'  longer than any trained' if digits > args.max_digits else ''}")
            if digits <= args.max_digits:
                trained += digit_acc / args.max_digits
    print(f"digit accuracy at the trained lengths: {trained:.4f}")
    common.print_wall_time(t0)
    return 0 if trained >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
