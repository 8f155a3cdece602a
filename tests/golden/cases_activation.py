"""Golden cases for the activations and Linear (tests/test_nn_activation.c reads
activation.txt).

Each case is named "<op>/<variant>" and holds the input x, the op's options (negative_slope,
alpha, beta, threshold, axis, axes, keepdim), the output `out`, the seed R and the gradient of
sum(out * R) w.r.t. x (`grad_x`); Linear cases also hold weight (and bias) and their gradients.
Inputs of the piecewise activations are kept away from their kinks so gradcheck applies.
"""
import math

import torch
import torch.nn.functional as F

GEN = torch.Generator().manual_seed(4321)


def randn(*shape):
    return torch.randn(tuple(shape), generator=GEN)


def off_zero(x, gap=0.05):
    """Moves entries within gap of 0 out to +-3 gap."""
    x = x.clone()
    near = x.abs() < gap
    x[near] = torch.where(x[near] < 0, -3 * gap, 3 * gap)
    return x


def run(fn, x, with_grad=True, **extra):
    x = x.clone().requires_grad_(True)
    out = fn(x)
    r = randn(*out.shape)
    case = {"x": x}
    case.update(extra)
    case.update({"out": out, "R": r})
    if with_grad:
        (out * r).sum().backward()
        case["grad_x"] = x.grad
    return case


def pointwise_cases():
    x = off_zero(randn(3, 4) * 2)
    wide = x.clone()
    wide[0, 0], wide[0, 1], wide[2, 3] = 30.0, -30.0, -8.0
    yield "relu/basic", run(F.relu, x)
    yield "leaky_relu/default", run(lambda t: F.leaky_relu(t, 0.01), x, negative_slope=0.01)
    yield "leaky_relu/slope", run(lambda t: F.leaky_relu(t, 0.2), x, negative_slope=0.2)
    yield "elu/default", run(lambda t: F.elu(t, 1.0), wide, alpha=1.0)
    yield "elu/alpha", run(lambda t: F.elu(t, 1.7), x, alpha=1.7)
    yield "sigmoid/basic", run(torch.sigmoid, wide)
    yield "tanh/basic", run(torch.tanh, wide)
    yield "silu/basic", run(F.silu, wide)
    yield "gelu/exact", run(lambda t: F.gelu(t, approximate="none"), wide)
    yield "gelu/tanh", run(lambda t: F.gelu(t, approximate="tanh"), wide)
    # Above the threshold softplus is x itself; below it log1p(exp(beta x)) / beta.
    sp = x.clone()
    sp[0, 0], sp[0, 1], sp[1, 2], sp[2, 3] = 25.0, 19.5, -30.0, 21.0
    yield "softplus/default", run(lambda t: F.softplus(t, 1.0, 20.0), sp, beta=1.0,
                                  threshold=20.0)
    sp2 = x.clone()
    sp2[0, 0], sp2[0, 1], sp2[1, 2], sp2[2, 3] = 2.4, 2.6, -10.0, 4.0
    yield "softplus/beta_threshold", run(lambda t: F.softplus(t, 2.0, 5.0), sp2, beta=2.0,
                                         threshold=5.0)
    sp3 = x.clone()
    sp3[1, 1] = 12.0
    yield "softplus/small_beta", run(lambda t: F.softplus(t, 0.5, 3.0), sp3, beta=0.5,
                                     threshold=3.0)


def softmax_cases():
    x = randn(2, 3, 4) * 2
    for axis in (0, 1, -1):
        yield f"softmax/axis{axis}", run(lambda t: F.softmax(t, axis), x, axis=axis)
    for axis in (0, 2, -2):
        yield f"log_softmax/axis{axis}", run(lambda t: F.log_softmax(t, axis), x, axis=axis)

    # logsumexp over several axes; some entries are -inf (a whole reduced slice is not).
    xi = randn(2, 3, 4) * 3
    xi[0, 1, 2] = -math.inf
    xi[1, 0, :3] = -math.inf
    xi[1, 2, 0] = -math.inf
    for axes in ((1, 2), (0, 2), (-1,), (0, 1, 2)):
        for keepdim in (True, False):
            name = "logsumexp/axes" + "_".join(str(a) for a in axes) + ("_keep" if keepdim else "")
            yield name, run(lambda t: torch.logsumexp(t, axes, keepdim), xi,
                            axes=torch.tensor(axes), keepdim=int(keepdim))
    # A slice that is -inf throughout gives -inf (values only: PyTorch's gradient there is NaN).
    xr = xi.clone()
    xr[0, 2, :] = -math.inf
    yield "logsumexp/neg_inf_row", run(lambda t: torch.logsumexp(t, (2,), False), xr,
                                       with_grad=False, axes=torch.tensor((2,)), keepdim=0)


def linear_cases():
    for name, x_shape, bias in (("batched", (2, 3, 4), True), ("no_bias", (3, 4), False),
                                ("vector", (4,), True)):
        x = randn(*x_shape).requires_grad_(True)
        w = randn(5, 4).requires_grad_(True)
        b = randn(5).requires_grad_(True) if bias else None
        out = F.linear(x, w, b)
        r = randn(*out.shape)
        (out * r).sum().backward()
        case = {"x": x, "weight": w}
        if bias:
            case["bias"] = b
        case.update({"out": out, "R": r, "grad_x": x.grad, "grad_weight": w.grad})
        if bias:
            case["grad_bias"] = b.grad
        yield f"linear/{name}", case


def cases():
    yield from pointwise_cases()
    yield from softmax_cases()
    yield from linear_cases()
