#!/usr/bin/python3
"""bbox in PyTorch: the twin of examples/bbox.c. Seed 000's bounding-box regression on one
generated 3-channel 28x28 image (a coloured rectangle on a noisy background, drawn by bbox.c's
rule): the net Conv 3->16 k3 s2, ReLU, Conv 16->8 k3 s2, ReLU, Conv 8->8 k3, ReLU, Flatten,
Linear 128->64, ReLU, Linear 64->4 (PyTorch's default init) regresses (left, top, right, bottom)
as fractions of the side from the input pixel/255 - 0.5; loss 0.5 * summed squared error, Adam
lr 1e-2, 100 steps, then one more forward pass that only measures. Prints the loss falling,
both boxes and
  loss A -> B, IoU 0.XXXX
writes the image scaled 8x with both boxes as a PPM, and, last, the wall time from the start of
main (bbox.c prints none: compare.sh times the whole C process). Exits 1 unless the IoU reaches
0.8.

  /usr/bin/python3 examples/pytorch/bbox.py [--steps N] [--lr X] [--seed N] [--out PATH]
      [--threads N]
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

SIZE, SCALE = 28, 8


def make_image(rng):
    """(pixels uint8 [SIZE, SIZE, 3], box (x0, y0, x1, y1) as fractions), by make_image's rule:
    a background colour of 60..139 per channel, a vivid foreground colour (one channel 255, the
    next below 100), a w x h rectangle (8..18 each) inside a 1-pixel margin, and +-30 uniform
    integer noise on every pixel, clamped to 0..255."""
    bg = 60 + rng.integers(0, 80, 3)
    fg = rng.integers(0, 256, 3)
    k = int(rng.integers(0, 3))
    fg[k] = 255
    fg[(k + 1) % 3] = rng.integers(0, 100)
    w, h = 8 + int(rng.integers(0, 11)), 8 + int(rng.integers(0, 11))
    x0 = 1 + int(rng.integers(0, SIZE - w - 1))
    y0 = 1 + int(rng.integers(0, SIZE - h - 1))
    img = np.empty((SIZE, SIZE, 3), np.int64)
    img[:] = bg
    img[y0:y0 + h, x0:x0 + w] = fg
    img += rng.integers(0, 61, (SIZE, SIZE, 3)) - 30
    return (np.clip(img, 0, 255).astype(np.uint8),
            (x0 / SIZE, y0 / SIZE, (x0 + w) / SIZE, (y0 + h) / SIZE))


def iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    if w <= 0 or h <= 0 or area_a <= 0 or area_b <= 0:
        return 0.0
    return w * h / (area_a + area_b - w * h)


def draw_box(rgb, b, colour, outside):
    """The outline of b, two pixels wide, inside the box or just outside it (bbox.c's
    draw_box)."""
    n = rgb.shape[0]
    grow = 2 if outside else 0

    def px(v):
        return int(min(max(v * n, -4.0), n + 4.0)) if v == v else -4

    x0, y0 = px(b[0]) - grow, px(b[1]) - grow
    x1, y1 = px(b[2]) - 1 + grow, px(b[3]) - 1 + grow
    ys, xs = np.arange(n)[:, None], np.arange(n)[None, :]
    inside = (ys >= y0) & (ys <= y1) & (xs >= x0) & (xs <= x1)
    edge = (xs - x0 < 2) | (x1 - xs < 2) | (ys - y0 < 2) | (y1 - ys < 2)
    rgb[inside & edge] = colour


def write_ppm(path, pixels, truth, pred):
    rgb = pixels.repeat(SCALE, 0).repeat(SCALE, 1)
    draw_box(rgb, truth, (255, 0, 0), True)
    draw_box(rgb, pred, (0, 255, 0), False)
    with open(path, "wb") as f:
        f.write(f"P6\n{rgb.shape[1]} {rgb.shape[0]}\n255\n".encode())
        f.write(rgb.tobytes())


def main(argv):
    ap = common.parser("bbox: the PyTorch twin of examples/bbox.c")
    ap.add_argument("--steps", type=int, default=100, help="Adam steps (default 100)")
    ap.add_argument("--lr", type=float, default=1e-2, help="learning rate (default 0.01)")
    ap.add_argument("--seed", type=int, default=3, help="seed of the image and the weights")
    ap.add_argument("--out", default="bbox.ppm", help="the image with both boxes")
    args = ap.parse_args(argv)
    common.set_threads(args.threads)
    t0 = common.now()

    pixels, truth = make_image(np.random.default_rng(args.seed))
    image = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).float().div(255.0).sub(0.5)
    target = torch.tensor([truth], dtype=torch.float32)
    torch.manual_seed(args.seed)
    model = nn.Sequential(nn.Sequential(
        nn.Conv2d(3, 16, 3, 2), nn.ReLU(), nn.Conv2d(16, 8, 3, 2), nn.ReLU(),
        nn.Conv2d(8, 8, 3, 1), nn.ReLU(), nn.Flatten(), nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, 4)))
    optim = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(model)
    print("true box (%.3f, %.3f, %.3f, %.3f)" % truth)

    first = value = 0.0
    for step in range(args.steps + 1):
        out = model(image)
        loss = 0.5 * F.mse_loss(out, target, reduction="sum")
        value = loss.item()
        predicted = out.detach()[0].tolist()
        if step == 0:
            first = value
        if step % 10 == 0 or step == args.steps:
            print(f"step {step:3d}  loss {value:.3e}")
        if step == args.steps:
            break
        optim.zero_grad()
        loss.backward()
        optim.step()

    score = iou(predicted, truth)
    print("predicted box (%.3f, %.3f, %.3f, %.3f)" % tuple(predicted))
    print(f"loss {first:.3e} -> {value:.3e}, IoU {score:.4f}")
    write_ppm(args.out, pixels, truth, predicted)
    print(f"wrote {args.out} (red: true box, green: predicted)")
    common.print_wall_time(t0)
    return 0 if score >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
