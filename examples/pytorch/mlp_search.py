#!/usr/bin/python3
"""mlp_search in PyTorch: the twin of examples/mlp_search.c. Hyperparameter search as in the
notes (seed 004, section 4.5) over their two-layer classifier Linear(784, hidden) -> ReLU ->
Linear(hidden, 10) (PyTorch's default init), trained with Adam on the mean cross-entropy plus
reg * (sum W1^2 + sum W2^2), batch 50, shuffled, inputs pixel / 255:
  - grid search: every pair of lr in {1e-2, 1e-3, 1e-4} and reg in {1e-4, 1e-3}, hidden 100;
  - random search (6 trials): lr and reg log-uniform in [1e-4, 1e-2] and [1e-6, 1e-2], hidden
    uniform in 32..256. The draws come from a port of tapegrad's generator seeded as the C
    program's, which draws them first: the trials are the C program's trials.
Each trial trains at most 15 epochs on the first 5,000 training images, with early stopping
(patience 3) on the loss over the next 1,000 (the validation split), and keeps its best epoch's
parameters; the best trial has the lowest validation loss. Prints a row per trial, then
  test accuracy of the best model: 0.XXXX (test loss L)
on the 10,000 official test images and, last, the wall time from the start of main
(mlp_search.c prints per-trial times only: compare.sh times the whole C process).

  /usr/bin/python3 examples/pytorch/mlp_search.py [--epochs N] [--patience N] [--trials N]
      [--batch N] [--seed N] [--data DIR] [--train-limit N] [--val-limit N] [--test-limit N]
      [--threads N]
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import common

EVAL_BATCH = 1000
GRID_LR, GRID_REG = (1e-2, 1e-3, 1e-4), (1e-4, 1e-3)


class ClassificationNet(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


class EarlyStopping:
    """tg_early_stopping (minimizing, min_delta 0): stop after `patience` updates without a
    strictly lower value."""

    def __init__(self, patience):
        self.patience, self.best, self.bad, self.best_update, self.updates = \
            patience, math.inf, 0, -1, 0

    def update(self, metric):
        improved = metric < self.best
        if improved:
            self.best, self.best_update, self.bad = metric, self.updates, 0
        else:
            self.bad += 1
        self.updates += 1
        return not improved and self.bad >= self.patience


def evaluate(model, loader):
    """(mean cross-entropy, accuracy) over every batch, without recording."""
    loss_sum = correct = 0.0
    seen = 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            loss_sum += F.cross_entropy(logits, y).item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return loss_sum / seen, correct / seen


def run_trial(cfg, args, train, val):
    """Trains a fresh net with cfg = (lr, hidden, reg), early-stopping on the validation loss;
    returns the net at its best epoch and (val_loss, val_acc, epochs_run, best_epoch,
    stopped_early, seconds)."""
    t0 = common.now()
    lr, hidden, reg = cfg
    model = ClassificationNet(hidden)
    adam = torch.optim.Adam(model.parameters(), lr=lr)
    es = EarlyStopping(args.patience)
    best_state, val_loss, val_acc = None, math.inf, 0.0
    epochs_run, best_epoch, stopped = 0, 0, False
    for epoch in range(args.epochs):
        for x, y in train:
            ce = F.cross_entropy(model(x), y)
            l2 = model.fc1.weight.square().sum() + model.fc2.weight.square().sum()
            loss = ce + reg * l2
            adam.zero_grad()
            loss.backward()
            adam.step()
        v_loss, v_acc = evaluate(model, val)
        epochs_run = epoch + 1
        stop = es.update(v_loss)
        if es.best_update == epoch:
            val_loss, val_acc, best_epoch = v_loss, v_acc, epoch + 1
            best_state = {k: t.clone() for k, t in model.state_dict().items()}
        if stop:
            stopped = epoch + 1 < args.epochs
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, (val_loss, val_acc, epochs_run, best_epoch, stopped, common.now() - t0)


def main(argv):
    ap = common.parser("mlp_search: the PyTorch twin of examples/mlp_search.c")
    ap.add_argument("--epochs", type=int, default=15, help="most epochs per trial (default 15)")
    ap.add_argument("--patience", type=int, default=3, help="early-stopping patience (3)")
    ap.add_argument("--trials", type=int, default=6, help="random-search trials (default 6)")
    ap.add_argument("--batch", type=int, default=50, help="batch size (default 50)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--data", default=common.MNIST_DIR, help="MNIST folder")
    ap.add_argument("--train-limit", type=int, default=5000, help="training images (5000)")
    ap.add_argument("--val-limit", type=int, default=1000, help="validation images after them")
    ap.add_argument("--test-limit", type=int, default=10000, help="official test images")
    args = ap.parse_args(argv)
    common.set_threads(args.threads)
    t0 = common.now()

    train_x, train_y = common.load_mnist(args.data, True)
    test_x, test_y = common.load_mnist(args.data, False)
    if args.train_limit + args.val_limit > len(train_x):
        sys.exit(f"mlp_search: the training file has only {len(train_x)} images")
    test_limit = min(args.test_limit, len(test_x))
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    train = common.Loader(train_x, train_y, torch.arange(args.train_limit), args.batch,
                          shuffle=True, gen=gen)
    val = common.Loader(train_x, train_y,
                        torch.arange(args.train_limit, args.train_limit + args.val_limit),
                        EVAL_BATCH)
    test = common.Loader(test_x, test_y, torch.arange(test_limit), EVAL_BATCH)

    # the grid first, then the random draws, from tapegrad's generator as mlp_search.c draws them
    rng = common.TgRng(args.seed)

    def log_uniform(lo, hi):
        return 10.0 ** (math.log10(lo) + (math.log10(hi) - math.log10(lo)) * rng.uniform())

    configs = [(GRID_LR[i // 2], 100, GRID_REG[i % 2]) for i in range(6)]
    for _ in range(args.trials):
        lr = log_uniform(1e-4, 1e-2)
        hidden = 32 + rng.below(225)
        configs.append((lr, hidden, log_uniform(1e-6, 1e-2)))

    print(f"two-layer classifier on {args.train_limit} training / {args.val_limit} validation / "
          f"{test_limit} test images; at most {args.epochs} epochs per trial, patience "
          f"{args.patience}\n")
    print("trial  search       lr  hidden       reg  epochs  best  val loss  val acc  time")
    best = None
    for i, cfg in enumerate(configs):
        model, r = run_trial(cfg, args, train, val)
        val_loss, val_acc, epochs_run, best_epoch, stopped, seconds = r
        print(f"{i + 1:5d}  {'grid' if i < 6 else 'random':<6s}  {cfg[0]:8.2e}  {cfg[1]:6d}  "
              f"{cfg[2]:8.2e}  {epochs_run:3d}{' es' if stopped else '':<3s}  {best_epoch:4d}  "
              f"{val_loss:8.4f}  {val_acc:7.4f}  {seconds:4.1f}s", flush=True)
        if best is None or val_loss < best[2][0]:
            best = (i, model, r)

    i, model, r = best
    test_loss, test_acc = evaluate(model, test)
    print("\n(es: stopped early; best: the epoch whose parameters were kept)")
    lr, hidden, reg = configs[i]
    print(f"best: trial {i + 1} ({'grid' if i < 6 else 'random'} search), lr {lr:.2e}, hidden "
          f"{hidden}, reg {reg:.2e}: validation loss {r[0]:.4f}, accuracy {r[1]:.4f}")
    print(f"test accuracy of the best model: {test_acc:.4f} (test loss {test_loss:.4f})")
    common.print_wall_time(t0)
    return 0 if test_acc > 0.5 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
