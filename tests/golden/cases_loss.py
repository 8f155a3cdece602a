"""Golden cases for the losses (tests/test_nn_loss.c reads loss.txt).

Each case is named "<loss>/<variant>/<reduction>" and holds the input x, the target, the
options (reduction code as tg_reduction: mean 0, sum 1, none 2, batchmean 3; ignore_index,
label_smoothing, beta, delta, p, margin, log_target), optional weight / pos_weight, the
output `out`, the seed R and the gradients of sum(out * R) w.r.t. x (`grad_x`) and, where
PyTorch differentiates the target, w.r.t. the target (`grad_target`). Inputs of the piecewise
losses are kept away from their kinks so gradcheck applies.
"""
import torch
import torch.nn.functional as F

REDUCTIONS = {"mean": 0, "sum": 1, "none": 2, "batchmean": 3}
GEN = torch.Generator().manual_seed(1234)


def randn(*shape):
    return torch.randn(tuple(shape), generator=GEN)


def rand(*shape):
    return torch.rand(tuple(shape), generator=GEN)


def randint(hi, *shape):
    return torch.randint(0, hi, shape, generator=GEN)


def away_from(d, kinks, gap=0.05):
    """Moves entries of d that lie within gap of any kink (in |d|) by 3 gaps."""
    d = d.clone()
    for k in kinks:
        near = (d.abs() - k).abs() < gap
        d[near] = torch.sign(d[near] + 1e-300) * (k + 3 * gap)
    return d


def run(fn, x, target, diff_target, reduction, with_grad=True, **extra):
    """out, R and gradients of sum(out * R) for fn(x, target, reduction) (no gradients
    without with_grad)."""
    x = x.clone().requires_grad_(True)
    target = target.clone()
    if diff_target:
        target.requires_grad_(True)
    out = fn(x, target, reduction)
    r = randn(*out.shape)
    (out * r).sum().backward()
    case = {"x": x, "target": target, "reduction": REDUCTIONS[reduction]}
    case.update(extra)
    case.update({"out": out, "R": r})
    if with_grad:
        case["grad_x"] = x.grad
    if with_grad and diff_target:
        case["grad_target"] = target.grad
    return case


def each_reduction(name, fn, x, target, diff_target=False, reductions=("mean", "sum", "none"),
                   with_grad=True, **extra):
    for red in reductions:
        yield f"{name}/{red}", run(fn, x, target, diff_target, red, with_grad, **extra)


def cross_entropy_cases():
    x = randn(4, 5) * 2
    t = torch.tensor([1, 0, 4, 2])
    t_ign = torch.tensor([1, -100, 4, 2])
    t_ign2 = torch.tensor([1, 3, 4, 3])  # ignore_index 3 (a real class) hides two targets
    w = rand(5) + 0.5
    prob = torch.softmax(randn(4, 5), 1)

    def ce(**kw):
        return lambda a, b, red: F.cross_entropy(a, b, reduction=red, **kw)

    yield from each_reduction("cross_entropy/basic", ce(), x, t, ignore_index=-100)
    yield from each_reduction("cross_entropy/weight", ce(weight=w), x, t, weight=w,
                              ignore_index=-100)
    yield from each_reduction("cross_entropy/ignore", ce(), x, t_ign, ignore_index=-100)
    yield from each_reduction("cross_entropy/ignore_class", ce(ignore_index=3), x, t_ign2,
                              ignore_index=3)
    yield from each_reduction("cross_entropy/weight_ignore", ce(weight=w, ignore_index=3), x,
                              t_ign2, weight=w, ignore_index=3)
    yield from each_reduction("cross_entropy/smoothing", ce(label_smoothing=0.2), x, t,
                              ignore_index=-100, label_smoothing=0.2)
    yield from each_reduction("cross_entropy/smoothing_weight",
                              ce(weight=w, label_smoothing=0.3), x, t, weight=w,
                              ignore_index=-100, label_smoothing=0.3)
    yield from each_reduction("cross_entropy/smoothing_ignore",
                              ce(ignore_index=3, label_smoothing=0.25), x, t_ign2,
                              ignore_index=3, label_smoothing=0.25)
    yield from each_reduction("cross_entropy/smoothing_weight_ignore",
                              ce(weight=w, ignore_index=-100, label_smoothing=0.1), x, t_ign,
                              weight=w, ignore_index=-100, label_smoothing=0.1)
    yield from each_reduction("cross_entropy/full_smoothing", ce(weight=w, label_smoothing=1.0),
                              x, t, weight=w, ignore_index=-100, label_smoothing=1.0)
    yield from each_reduction("cross_entropy/prob", ce(), x, prob, True, ignore_index=-100)
    yield from each_reduction("cross_entropy/prob_weight", ce(weight=w), x, prob, True,
                              weight=w, ignore_index=-100)
    yield from each_reduction("cross_entropy/prob_smoothing_weight",
                              ce(weight=w, label_smoothing=0.15), x, prob, True, weight=w,
                              ignore_index=-100, label_smoothing=0.15)

    # Spatial: logits [N, C, d1, d2] with targets [N, d1, d2].
    xs = randn(3, 4, 2, 3) * 2
    ts = randint(4, 3, 2, 3)
    ts[0, 1, 2] = -100
    ts[2, 0, 0] = -100
    ws = rand(4) + 0.5
    ps = torch.softmax(randn(3, 4, 2, 3), 1)
    yield from each_reduction("cross_entropy/spatial", ce(), xs, ts, ignore_index=-100)
    yield from each_reduction("cross_entropy/spatial_weight_smoothing",
                              ce(weight=ws, label_smoothing=0.2), xs, ts, weight=ws,
                              ignore_index=-100, label_smoothing=0.2)
    yield from each_reduction("cross_entropy/spatial_prob_weight",
                              ce(weight=ws, label_smoothing=0.1), xs, ps, True, weight=ws,
                              ignore_index=-100, label_smoothing=0.1)


def nll_cases():
    x = torch.log_softmax(randn(4, 5), 1)
    t = torch.tensor([3, -100, 0, 3])
    w = rand(5) + 0.5

    def nll(**kw):
        return lambda a, b, red: F.nll_loss(a, b, reduction=red, **kw)

    yield from each_reduction("nll_loss/basic", nll(), x, torch.tensor([3, 1, 0, 4]),
                              ignore_index=-100)
    yield from each_reduction("nll_loss/weight_ignore", nll(weight=w), x, t, weight=w,
                              ignore_index=-100)
    xs = torch.log_softmax(randn(2, 3, 4), 1)
    ts = torch.tensor([[0, 2, 1, 1], [2, 2, 0, 1]])
    yield from each_reduction("nll_loss/spatial_ignore", nll(ignore_index=1), xs, ts,
                              ignore_index=1)


def binary_cases():
    p = rand(3, 4) * 0.9 + 0.05
    y = rand(3, 4)
    w = rand(4) + 0.5
    yield from each_reduction(
        "binary_cross_entropy/basic",
        lambda a, b, red: F.binary_cross_entropy(a, b, reduction=red), p, y, True)
    yield from each_reduction(
        "binary_cross_entropy/weight",
        lambda a, b, red: F.binary_cross_entropy(a, b, weight=w, reduction=red), p, y, True,
        weight=w)
    # Exact 0 and 1 probabilities: the logs clamp at -100. Values only: at p = 0 or 1 PyTorch's
    # gradient (p - y) / max(p (1 - p), 1e-12) is not the derivative of the clamped loss.
    pe = torch.tensor([[0.0, 0.3], [1.0, 0.6], [0.0, 1.0]])
    ye = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.75, 0.5]])
    yield from each_reduction(
        "binary_cross_entropy/saturated",
        lambda a, b, red: F.binary_cross_entropy(a, b, reduction=red), pe, ye, False,
        reductions=("none", "sum"), with_grad=False)

    x = randn(3, 4) * 3
    x[0, 0], x[1, 1], x[2, 2] = 40.0, -40.0, 0.0  # saturated and the switch point of max(-x, 0)
    pw = rand(4) * 2 + 0.25

    def bcel(**kw):
        return lambda a, b, red: F.binary_cross_entropy_with_logits(a, b, reduction=red, **kw)

    yield from each_reduction("bce_with_logits/basic", bcel(), x, y, True)
    yield from each_reduction("bce_with_logits/weight", bcel(weight=w), x, y, True, weight=w)
    yield from each_reduction("bce_with_logits/pos_weight", bcel(pos_weight=pw), x, y, True,
                              pos_weight=pw)
    yield from each_reduction("bce_with_logits/weight_pos_weight",
                              bcel(weight=w, pos_weight=pw), x, y, True, weight=w,
                              pos_weight=pw)


def regression_cases():
    x = randn(3, 4)
    y = x + away_from(randn(3, 4), [0.0])
    yield from each_reduction("mse_loss/basic",
                              lambda a, b, red: F.mse_loss(a, b, reduction=red), x, y, True)
    yield from each_reduction("l1_loss/basic",
                              lambda a, b, red: F.l1_loss(a, b, reduction=red), x, y, True)
    y2 = x + away_from(randn(3, 4) * 0.8, [0.0, 0.5])
    yield from each_reduction(
        "smooth_l1_loss/beta",
        lambda a, b, red: F.smooth_l1_loss(a, b, reduction=red, beta=0.5), x, y2, True,
        beta=0.5)
    yield from each_reduction(
        "smooth_l1_loss/beta0",
        lambda a, b, red: F.smooth_l1_loss(a, b, reduction=red, beta=0.0), x, y2, True,
        beta=0.0)
    y3 = x + away_from(randn(3, 4), [0.0, 0.7])
    yield from each_reduction(
        "huber_loss/delta",
        lambda a, b, red: F.huber_loss(a, b, reduction=red, delta=0.7), x, y3, True, delta=0.7)


def margin_cases():
    x = randn(4, 5)
    t = torch.tensor([2, 0, 4, 2])
    w = rand(5) + 0.5
    for p, margin in ((1, 1.0), (2, 0.5)):
        # Keep margin - x[y] + x[i] away from 0 for i != y (the hinge's kink).
        xt = x.clone()
        for i in range(4):
            z = margin - xt[i, t[i]] + xt[i]
            near = (z.abs() < 0.05)
            near[t[i]] = False
            xt[i][near] += 0.2
        for wt in (None, w):
            name = f"multi_margin_loss/p{p}" + ("_weight" if wt is not None else "")
            extra = {"p": p, "margin": margin}
            if wt is not None:
                extra["weight"] = wt
            yield from each_reduction(
                name,
                lambda a, b, red, p=p, margin=margin, wt=wt: F.multi_margin_loss(
                    a, b, p=p, margin=margin, weight=wt, reduction=red),
                xt, t, **extra)


def kl_cases():
    x = torch.log_softmax(randn(3, 4), 1)
    t = torch.softmax(randn(3, 4), 1)
    reds = ("mean", "sum", "none", "batchmean")
    yield from each_reduction(
        "kl_div/prob",
        lambda a, b, red: F.kl_div(a, b, reduction=red, log_target=False), x, t, True, reds,
        log_target=0)
    yield from each_reduction(
        "kl_div/log_target",
        lambda a, b, red: F.kl_div(a, b, reduction=red, log_target=True), x, torch.log(t),
        True, reds, log_target=1)
    tz = t.clone()
    tz[1, 2] = 0.0  # 0 log 0 = 0
    yield from each_reduction(
        "kl_div/zero_target",
        lambda a, b, red: F.kl_div(a, b, reduction=red, log_target=False), x, tz, False,
        ("batchmean",), log_target=0)


def cases():
    yield from cross_entropy_cases()
    yield from nll_cases()
    yield from binary_cases()
    yield from regression_cases()
    yield from margin_cases()
    yield from kl_cases()
