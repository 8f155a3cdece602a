#!/usr/bin/python3
"""autoencoder in PyTorch: the twin of examples/autoencoder.c. The MNIST autoencoder of the
notes (seed 004, section 6.4): encoder Linear(784, 256) -> LeakyReLU(0.01) -> Linear(256, 20),
decoder Linear(20, 256) -> LeakyReLU(0.01) -> Linear(256, 784) (PyTorch's default init), the
mean squared error between input and output pixels (pixel / 255), Adam lr 1e-3 with a cosine
schedule (T_max = epochs, eta_min 0) stepped per epoch, batch 64, shuffled, 10 epochs over the
bundled training file (24,345 images), tested on the 10,000 official test images after every
epoch (batches of 1,000, no grad). Ends with
  test MSE 0.XXXXX (the mean training image scores 0.XXXXX)
writes the PGM of originals above their reconstructions, and prints, last, the wall time from
the start of main (autoencoder.c prints none: compare.sh times the whole C process). Exits 1
unless the test MSE is below half the baseline.

  /usr/bin/python3 examples/pytorch/autoencoder.py [--epochs N] [--batch N] [--lr X]
      [--hidden N] [--seed N] [--data DIR] [--train-limit N] [--test-limit N] [--out PATH]
      [--threads N] [--quiet]
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

SIDE, PIXELS, LATENT, EVAL_BATCH = 28, 784, 20, 1000
GRID_COLS, GRID_PAIRS, GAP, ZOOM = 10, 3, 2, 2


class Autoencoder(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(PIXELS, hidden), nn.LeakyReLU(0.01),
                                     nn.Linear(hidden, LATENT))
        self.decoder = nn.Sequential(nn.Linear(LATENT, hidden), nn.LeakyReLU(0.01),
                                     nn.Linear(hidden, PIXELS))

    def forward(self, flat):
        return self.decoder(self.encoder(flat))


def evaluate(model, loader):
    """Mean squared error per pixel over the whole loader, without recording."""
    total, seen = 0.0, 0
    with torch.no_grad():
        for x, _ in loader:
            flat = x.reshape(-1, PIXELS)
            total += F.mse_loss(model(flat), flat, reduction="sum").item()
            seen += flat.numel()
    return total / seen


def write_grid(path, model, test_x):
    """GRID_PAIRS pairs of rows of the first test digits, originals above reconstructions, each
    digit ZOOM times larger and GAP pixels apart, as a grey PGM (autoencoder.c's write_grid)."""
    n, cell = GRID_COLS * GRID_PAIRS, SIDE * ZOOM + GAP
    width, height = GRID_COLS * cell + GAP, 2 * GRID_PAIRS * cell + GAP
    images = test_x[:n].reshape(n, PIXELS).float() / 255.0
    with torch.no_grad():
        rec = model(images)
    canvas = np.full((height, width), 64, np.uint8)
    for i in range(n):
        for k, src in enumerate((images[i], rec[i])):
            v = (src.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).reshape(SIDE, SIDE).numpy()
            top = GAP + (2 * (i // GRID_COLS) + k) * cell
            left = GAP + (i % GRID_COLS) * cell
            canvas[top:top + SIDE * ZOOM, left:left + SIDE * ZOOM] = \
                v.repeat(ZOOM, 0).repeat(ZOOM, 1)
    with open(path, "wb") as f:
        f.write(f"P5\n{width} {height}\n255\n".encode())
        f.write(canvas.tobytes())


def main(argv):
    ap = common.parser("autoencoder: the PyTorch twin of examples/autoencoder.c")
    ap.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    ap.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    ap.add_argument("--lr", type=float, default=1e-3, help="initial Adam lr (default 0.001)")
    ap.add_argument("--hidden", type=int, default=256, help="hidden width (default 256)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--data", default=common.MNIST_DIR, help="MNIST folder")
    ap.add_argument("--train-limit", type=int, default=0, help="the first N training images")
    ap.add_argument("--test-limit", type=int, default=0, help="the first N test images")
    ap.add_argument("--out", default="autoencoder.pgm", help="originals and reconstructions")
    ap.add_argument("--quiet", action="store_true", help="accepted; there is no progress bar")
    args = ap.parse_args(argv)
    common.set_threads(args.threads)
    t0 = common.now()

    train_x, train_y = common.load_mnist(args.data, True)
    test_x, test_y = common.load_mnist(args.data, False)
    n_train = min(args.train_limit, len(train_x)) if args.train_limit > 0 else len(train_x)
    n_test = min(args.test_limit, len(test_x)) if args.test_limit > 0 else len(test_x)
    gen = torch.Generator().manual_seed(args.seed)
    train = common.Loader(train_x, train_y, torch.arange(n_train), args.batch, shuffle=True,
                          gen=gen)
    test = common.Loader(test_x, test_y, torch.arange(n_test), EVAL_BATCH)

    torch.manual_seed(args.seed)
    model = Autoencoder(args.hidden)
    adam = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(adam, args.epochs, 0.0)
    print(model)
    print(f"{sum(p.numel() for p in model.parameters())} parameters; {n_train} training and "
          f"{n_test} test images")

    for epoch in range(args.epochs):
        lr = adam.param_groups[0]["lr"]
        loss_sum, done = 0.0, 0
        for x, _ in train:
            flat = x.reshape(-1, PIXELS)
            loss = F.mse_loss(model(flat), flat)
            adam.zero_grad()
            loss.backward()
            adam.step()
            loss_sum += loss.item()
            done += 1
        sched.step()
        print(f"epoch {epoch + 1}/{args.epochs}  lr {lr:.2e}  train loss "
              f"{loss_sum / max(done, 1):.5f}  test MSE {evaluate(model, test):.5f}", flush=True)

    test_mse = evaluate(model, test)
    mean = train_x[:n_train].reshape(n_train, PIXELS).double().div(255.0).mean(0)
    baseline = (test_x[:n_test].reshape(n_test, PIXELS).double().div(255.0) - mean) \
        .square().mean().item()
    print(f"test MSE {test_mse:.5f} (the mean training image scores {baseline:.5f})")
    write_grid(args.out, model, test_x)
    print(f"wrote {args.out} (rows of test digits, each above its reconstruction)")
    common.print_wall_time(t0)
    return 0 if test_mse < 0.5 * baseline else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
