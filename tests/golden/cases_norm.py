"""Golden cases for normalization and embedding (tests/test_nn_norm.c): batch norm over several
training steps (outputs, gradients and the running statistics after each step) and then in eval
mode, layer norm, group norm, local response norm and embedding lookup. Every case stores the
inputs, the output and the gradients of sum(out * R) for a stored random R."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def weighted_grads(out, inputs):
    """R and the gradients of sum(out * R) with respect to inputs."""
    r = torch.randn(out.shape)
    return r, torch.autograd.grad((out * r).sum(), inputs)


def batch_norm_sequence(name, module, shape, steps):
    """`steps` training forwards of a fresh module on inputs with per-channel offsets and scales,
    then one eval forward. Keys: x<s>, R<s>, y<s>, gx<s>, gw<s>, gb<s>, rm<s>, rv<s> per step
    (rm/rv after the step), then xe, Re, ye, gxe, gwe, gbe, and nbt."""
    c = shape[1]
    view = [1, c] + [1] * (len(shape) - 2)
    offset = torch.randn(c).view(view) * 2.0
    scale = torch.rand(c).view(view) * 2.0 + 0.5
    out = {"momentum": module.momentum, "eps": module.eps, "affine": int(module.affine),
           "steps": steps}
    if module.affine:
        with torch.no_grad():
            module.weight.copy_(torch.rand(c) + 0.5)
            module.bias.copy_(torch.randn(c))
        out["weight"] = module.weight.detach().clone()
        out["bias"] = module.bias.detach().clone()
    params = [module.weight, module.bias] if module.affine else []

    def step(tag):
        x = (torch.randn(shape) * scale + offset).requires_grad_()
        y = module(x)
        r, gs = weighted_grads(y, [x] + params)
        out["x" + tag], out["R" + tag], out["y" + tag], out["gx" + tag] = x, r, y, gs[0]
        if module.affine:
            out["gw" + tag], out["gb" + tag] = gs[1], gs[2]

    module.train()
    for s in range(steps):
        step(str(s))
        out[f"rm{s}"] = module.running_mean.clone()
        out[f"rv{s}"] = module.running_var.clone()
    out["nbt"] = int(module.num_batches_tracked)
    module.eval()
    step("e")
    return name, out


def layer_norm_case(name, shape, n_dims, affine, eps):
    norm_shape = shape[-n_dims:]
    x = torch.randn(shape).requires_grad_()
    w = (torch.rand(norm_shape) + 0.5).requires_grad_() if affine else None
    b = torch.randn(norm_shape).requires_grad_() if affine else None
    y = F.layer_norm(x, norm_shape, w, b, eps)
    r, gs = weighted_grads(y, [x] + ([w, b] if affine else []))
    out = {"n_dims": n_dims, "eps": eps, "x": x, "R": r, "y": y, "gx": gs[0]}
    if affine:
        out.update(weight=w, bias=b, gw=gs[1], gb=gs[2])
    return name, out


def group_norm_case(name, shape, groups, affine, eps):
    c = shape[1]
    x = (torch.randn(shape) * 1.5 + 0.3).requires_grad_()
    w = (torch.rand(c) + 0.5).requires_grad_() if affine else None
    b = torch.randn(c).requires_grad_() if affine else None
    y = F.group_norm(x, groups, w, b, eps)
    r, gs = weighted_grads(y, [x] + ([w, b] if affine else []))
    out = {"groups": groups, "eps": eps, "x": x, "R": r, "y": y, "gx": gs[0]}
    if affine:
        out.update(weight=w, bias=b, gw=gs[1], gb=gs[2])
    return name, out


def lrn_case(name, shape, size, alpha, beta, k):
    x = (torch.randn(shape) * 2.0).requires_grad_()
    y = F.local_response_norm(x, size, alpha, beta, k)
    r, (gx,) = weighted_grads(y, [x])
    return name, {"size": size, "alpha": alpha, "beta": beta, "k": k, "x": x, "R": r, "y": y,
                  "gx": gx}


def embedding_case(name, num, dim, idx):
    w = torch.randn(num, dim).requires_grad_()
    y = F.embedding(idx, w)
    r, (gw,) = weighted_grads(y, [w])
    return name, {"weight": w, "idx": idx, "R": r, "y": y, "gw": gw}


def cases():
    yield batch_norm_sequence("bn2d", nn.BatchNorm2d(3), [4, 3, 2, 2], 3)
    yield batch_norm_sequence("bn1d_2d", nn.BatchNorm1d(4, eps=1e-3, momentum=0.3), [6, 4], 2)
    yield batch_norm_sequence("bn1d_3d_noaffine", nn.BatchNorm1d(4, affine=False), [3, 4, 5], 2)
    yield layer_norm_case("ln_1dim", [3, 4, 5], 1, True, 1e-5)
    yield layer_norm_case("ln_2dims", [2, 3, 4], 2, True, 1e-5)
    yield layer_norm_case("ln_noaffine", [4, 6], 1, False, 1e-3)
    yield group_norm_case("gn_3groups", [2, 6, 3, 2], 3, True, 1e-5)
    yield group_norm_case("gn_1group_noaffine", [2, 4, 5], 1, False, 1e-5)
    yield group_norm_case("gn_instance", [2, 4, 3], 4, True, 1e-4)
    yield lrn_case("lrn_odd", [2, 7, 3, 2], 3, 0.5, 0.75, 1.0)
    yield lrn_case("lrn_even", [2, 6, 5], 4, 0.3, 0.6, 2.0)
    yield lrn_case("lrn_wide", [1, 5, 2, 2], 9, 1.0, 0.75, 1.0)
    yield lrn_case("lrn_defaults", [2, 5, 4], 5, 1e-4, 0.75, 1.0)
    yield embedding_case("emb_repeats", 10, 3, torch.tensor([[1, 2, 1, 9], [0, 2, 2, 5]]))
    yield embedding_case("emb_scalar", 6, 4, torch.tensor(4))
