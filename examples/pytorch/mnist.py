#!/usr/bin/python3
"""mnist in PyTorch: the twin of examples/mnist.c (and of lenet5.c and mytorch.c, which are the
same program with --model fixed; see lenet5.py and mytorch.py). Trains one of the three MNIST
nets of the notes with its recipe, exactly as examples/mnist_common.c does:

  seed000 (default)  Conv 1->16 k3 s2, ReLU, Conv 16->8 k3 s2, ReLU, Conv 8->8 k3, ReLU,
                     Flatten, Linear 128->64, ReLU, Dropout(0.5), Linear 64->10; PyTorch's
                     default init; batch 32, Adam lr 1e-2 stepped to 1e-3, 1e-4, 1e-5 at epochs
                     5, 15, 18 (the notes' table, stepped per epoch); inputs (x/255 - 0.5)/0.5;
                     shuffled; mean cross-entropy; 20 epochs.
  lenet5             Conv 1->6 k5, tanh, AvgPool 2, Conv 6->16 k5, tanh, AvgPool 2, Flatten,
                     Linear 400->120, tanh, Linear 120->84, tanh, Linear 84->10 on x/255
                     zero-padded to 32x32; conv weights normal(0, 0.1), linear weights
                     normal(0, sqrt(1/in)), biases zero (the notes' init); batch 64, SGD lr 0.1,
                     shuffled, mean cross-entropy, 5 epochs.
  mytorch            Conv 1->32 k3 s2 p1, MaxPool 3/2, (Conv 32->64 k3 s2 p1, BatchNorm2d,
                     ReLU), AvgPool 3, Flatten, Linear 64->10 on (x/255 - 0.5)/0.5; AdamW lr 0.01
                     (weight decay 0.01), batch 10, cross-entropy with reduction "sum", 30 epochs
                     over the first 1,500 training images in order (no shuffling), tested in eval
                     mode on the rest of the training file.

The others train on the bundled training file (24,345 images) and test on the official 10,000.
Prints the test accuracy after every epoch (eval mode, no grad, batches of 1,000) and, last,
  final test accuracy: 0.XXXX (E epochs, S s)
where S is the wall time from before the data are loaded to after the last evaluation, as the C
program measures it.

  /usr/bin/python3 examples/pytorch/mnist.py [--model NAME] [--epochs N] [--batch N] [--lr X]
      [--threads N] [--seed N] [--data DIR] [--train-limit N] [--test-limit N] [--quiet]
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import common

EVAL_BATCH = 1000

# name -> (batch, epochs, optimizer, lr, reduction, shuffle, train_first), as recipe_for
RECIPES = {
    "seed000": (32, 20, torch.optim.Adam, 1e-2, "mean", True, 0),
    "lenet5": (64, 5, torch.optim.SGD, 0.1, "mean", True, 0),
    "mytorch": (10, 30, torch.optim.AdamW, 0.01, "sum", False, 1500),
}

# seed 000's table of absolute rates from an epoch on: {5: 1e-3, 15: 1e-4, 18: 1e-5}
SEED000_TABLE = ((5, 1e-3), (15, 1e-4), (18, 1e-5))


def build_seed000():
    return nn.Sequential(nn.Sequential(
        nn.Conv2d(1, 16, 3, 2), nn.ReLU(), nn.Conv2d(16, 8, 3, 2), nn.ReLU(),
        nn.Conv2d(8, 8, 3, 1), nn.ReLU(), nn.Flatten(), nn.Linear(128, 64), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(64, 10)))


def build_lenet5():
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84),
        nn.Tanh(), nn.Linear(84, 10))
    # the notes' init, as build_lenet5: conv weights normal(0, 0.1), linear weights
    # normal(0, sqrt(1 / in)), biases zero
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 4:
                p.normal_(0.0, 0.1)
            elif p.dim() == 2:
                p.normal_(0.0, 1.0 / math.sqrt(p.shape[-1]))
            else:
                p.zero_()
    return net


def build_mytorch():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 2, 1), nn.MaxPool2d(3, 2),
        nn.Sequential(nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64, 1e-5, 0.1), nn.ReLU()),
        nn.AvgPool2d(3), nn.Flatten(), nn.Linear(64, 10))


BUILDERS = {"seed000": build_seed000, "lenet5": build_lenet5, "mytorch": build_mytorch}


def evaluate(model, loader):
    """Test accuracy over every batch, in eval mode without recording."""
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            seen += len(y)
    model.train()
    return correct / seen


def parse(argv, program, fixed_model):
    ap = common.parser(f"{program}: the PyTorch twin of examples/{program}.c")
    if fixed_model is None:
        ap.add_argument("--model", default="seed000", choices=sorted(RECIPES))
    ap.add_argument("--data", default=common.MNIST_DIR, help="MNIST folder")
    ap.add_argument("--epochs", type=int, default=0, help="epochs (default: the recipe's)")
    ap.add_argument("--batch", type=int, default=0, help="batch size (default: the recipe's)")
    ap.add_argument("--lr", type=float, default=0.0, help="initial lr (default: the recipe's)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--train-limit", type=int, default=0, help="train on the first N only")
    ap.add_argument("--test-limit", type=int, default=0, help="test on N only")
    ap.add_argument("--quiet", action="store_true", help="accepted for the C options' sake "
                    "(there is no progress bar here)")
    args = ap.parse_args(argv)
    if fixed_model is not None:
        args.model = fixed_model
    return args


def train_mnist(args):
    """The training run of train_mnist in mnist_common.c; returns the final test accuracy."""
    threads = common.set_threads(args.threads)
    batch0, epochs, optim_cls, lr0, reduction, shuffle, train_first = RECIPES[args.model]
    epochs = args.epochs or epochs
    batch = args.batch or batch0
    lr = args.lr or lr0
    t0 = common.now()

    train_x, train_y = common.load_mnist(args.data, True)
    test_x, test_y = (train_x, train_y) if train_first else common.load_mnist(args.data, False)
    split = min(train_first, len(train_x)) if train_first else len(train_x)

    def first(start, stop, limit):
        n = stop - start
        return torch.arange(start, start + (min(limit, n) if limit > 0 else n))

    train_idx = first(0, split, args.train_limit)
    test_idx = first(split if train_first else 0, len(test_x), args.test_limit)

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = BUILDERS[args.model]()
    model.train()
    opt = optim_cls(model.parameters(), lr=lr)
    sched = None
    if args.model == "seed000":
        def table(t):
            rate = lr
            for at, value in SEED000_TABLE:
                if t >= at:
                    rate = value
            return rate / lr
        sched = torch.optim.lr_scheduler.LambdaLR(opt, table)

    transform = {"pad": 2} if args.model == "lenet5" else {"normalize": ((0.5,), (0.5,))}
    train = common.Loader(train_x, train_y, train_idx, batch, shuffle=shuffle, gen=gen,
                          **transform)
    test = common.Loader(test_x, test_y, test_idx, EVAL_BATCH, **transform)
    print(f"{args.model}: {sum(p.numel() for p in model.parameters())} parameters, batch "
          f"{batch}, lr {lr:g}, {epochs} epochs, {train.num_examples()} training and "
          f"{test.num_examples()} test images, {threads} threads", flush=True)

    acc = -1.0
    for epoch in range(epochs):
        lr_now = opt.param_groups[0]["lr"]
        loss_sum = correct = 0.0
        seen = 0
        for x, y in train:
            logits = model(x)
            loss = F.cross_entropy(logits, y, reduction=reduction)
            loss.backward()
            opt.step()
            opt.zero_grad()
            b = len(y)
            per_example = loss.item() / (b if reduction == "sum" else 1)
            loss_sum += per_example * b
            correct += (logits.argmax(1) == y).sum().item()
            seen += b
        if sched is not None:
            sched.step()
        acc = evaluate(model, test)
        print(f"epoch {epoch + 1}/{epochs}  loss {loss_sum / seen:.4f}  train accuracy "
              f"{correct / seen:.4f}  test accuracy {acc:.4f}  lr {lr_now:g}  "
              f"({common.now() - t0:.1f} s)", flush=True)
    print(f"final test accuracy: {acc:.4f} ({epochs} epochs, {common.now() - t0:.1f} s)")
    return acc


def main(argv=None, program="mnist", fixed_model=None):
    args = parse(argv, program, fixed_model)
    return train_mnist(args)


if __name__ == "__main__":
    main(sys.argv[1:])
