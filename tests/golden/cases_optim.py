"""Golden cases for the optimizers and gradient utilities (tests/test_optim.c reads optim.txt).

Case "model" holds a small network's initial parameters, Linear(4, 3) -> tanh -> Linear(3, 2)
(w1 [3, 4], b1 [3], w2 [2, 3], b2 [2]), its input x [5, 4] and target y [5, 2]; the loss is
mse(model(x), y). Each case "<optimizer>/<variant>" trains that model for STEPS steps (zero_grad,
forward, backward, step) with torch.optim.<Optimizer>(foreach=False) and stores `traj`
[STEPS, 23]: every parameter flattened in the order w1, b1, w2, b2 after each step. Options:
`kind` (tg_optim_kind: SGD 0, Adam 1, AdamW 2, RMSprop 3, Adagrad 4), `dtype` (0 f64, 1 f32: the
whole run in float32), `groups`, and for each group i `g<i>.params` (indices into w1, b1, w2, b2)
and `g<i>.<option>` under tg_optim_opts's field names (absent = the defaults). `split` 1 means the
groups are the decay / no-decay split of tg_optim_add_model; `frozen` lists parameters that do
not require grad (they stay in their group and get no gradient).

Cases "clip/..." hold gradients (or a weight) before and after torch.nn.utils.clip_grad_norm_,
clip_grad_value_ and torch.renorm.
"""
import torch

STEPS = 20
KINDS = {"sgd": 0, "adam": 1, "adamw": 2, "rmsprop": 3, "adagrad": 4}
GEN = torch.Generator().manual_seed(2024)


def randn(*shape):
    return torch.randn(tuple(shape), generator=GEN)


def make_model():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(randn(*p.shape) * 0.7)
    return model


MODEL = make_model()
X = randn(5, 4)
Y = randn(5, 2)


def torch_group(opts):
    """tg_optim_opts-style options -> torch.optim keyword arguments."""
    kw = {}
    for key, value in opts.items():
        if key == "beta1":
            kw["betas"] = (value, kw.get("betas", (0.9, 0.999))[1])
        elif key == "beta2":
            kw["betas"] = (kw.get("betas", (0.9, 0.999))[0], value)
        elif key == "initial_accumulator":
            kw["initial_accumulator_value"] = value
        else:
            kw[key] = value
    return kw


def make_copy(dtype):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    model.load_state_dict(MODEL.state_dict())
    return model.to(dtype)


def train(kind, groups, dtype=torch.float64, frozen=(), split=False):
    """Trains a copy of MODEL; groups is a list of (param indices, options)."""
    model = make_copy(dtype)
    params = list(model.parameters())
    for i in frozen:
        params[i].requires_grad_(False)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}[kind]
    torch_groups = [dict(params=[params[i] for i in idx], **torch_group(o))
                    for idx, o in groups]
    opt = cls(torch_groups, foreach=False)
    if kind == "adagrad":
        # torch 1.13 fills every accumulator with the constructor's initial_accumulator_value
        # and ignores a group's own; tapegrad uses each group's, so set them here.
        for idx, o in groups:
            for i in idx:
                opt.state[params[i]]["sum"].fill_(o.get("initial_accumulator", 0.0))
    x, y = X.to(dtype), Y.to(dtype)
    traj = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        traj.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    case = {"kind": KINDS[kind], "dtype": int(dtype == torch.float32), "groups": len(groups)}
    if split:
        case["split"] = 1
    if frozen:
        case["frozen"] = list(frozen)
    for g, (idx, o) in enumerate(groups):
        case[f"g{g}.params"] = list(idx)
        for key, value in o.items():
            case[f"g{g}.{key}"] = float(value) if not isinstance(value, bool) else value
    case["traj"] = torch.stack(traj)
    return case


ALL = [0, 1, 2, 3]
DECAY, NO_DECAY = [0, 2], [1, 3]


def one(kind, **opts):
    return train(kind, [(ALL, opts)])


def optimizer_cases():
    yield "sgd/plain", one("sgd", lr=0.1)
    yield "sgd/momentum", one("sgd", lr=0.05, momentum=0.9)
    yield "sgd/dampening", one("sgd", lr=0.05, momentum=0.9, dampening=0.3)
    yield "sgd/nesterov", one("sgd", lr=0.05, momentum=0.9, nesterov=True)
    yield "sgd/weight_decay", one("sgd", lr=0.1, weight_decay=0.05)
    yield "sgd/momentum_weight_decay", one("sgd", lr=0.05, momentum=0.8, weight_decay=0.1,
                                           nesterov=True)
    yield "adam/plain", one("adam", lr=0.01)
    yield "adam/betas_eps", one("adam", lr=0.02, beta1=0.8, beta2=0.99, eps=1e-6)
    yield "adam/weight_decay", one("adam", lr=0.01, weight_decay=0.1)
    yield "adam/amsgrad", one("adam", lr=0.02, amsgrad=True)
    yield "adamw/plain", one("adamw", lr=0.01)
    yield "adamw/weight_decay", one("adamw", lr=0.02, weight_decay=0.2)
    yield "adamw/amsgrad", one("adamw", lr=0.02, amsgrad=True, beta2=0.95)
    yield "rmsprop/plain", one("rmsprop", lr=0.01)
    yield "rmsprop/alpha_eps", one("rmsprop", lr=0.01, alpha=0.9, eps=1e-4)
    yield "rmsprop/momentum", one("rmsprop", lr=0.005, momentum=0.9)
    yield "rmsprop/centered", one("rmsprop", lr=0.01, centered=True)
    yield "rmsprop/centered_momentum", one("rmsprop", lr=0.005, centered=True, momentum=0.8)
    yield "rmsprop/weight_decay", one("rmsprop", lr=0.01, weight_decay=0.1)
    yield "adagrad/plain", one("adagrad", lr=0.1)
    yield "adagrad/lr_decay", one("adagrad", lr=0.1, lr_decay=0.05)
    yield "adagrad/initial_accumulator", one("adagrad", lr=0.1, initial_accumulator=0.5)
    yield "adagrad/weight_decay", one("adagrad", lr=0.1, weight_decay=0.1, eps=1e-6)


def group_cases():
    """Two groups with different options: the decay / no-decay split of the weights and
    biases, and other partitions."""
    yield "sgd/groups", train("sgd", [(DECAY, dict(lr=0.05, momentum=0.9, weight_decay=0.01,
                                                   nesterov=True)),
                                      (NO_DECAY, dict(lr=0.02))], split=True)
    yield "adam/groups", train("adam", [(DECAY, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
                                        (NO_DECAY, dict(lr=0.005, beta1=0.5))], split=True)
    yield "adamw/groups", train("adamw", [(DECAY, dict(lr=0.01, weight_decay=0.1)),
                                          (NO_DECAY, dict(lr=0.01, weight_decay=0.0))],
                                split=True)
    yield "rmsprop/groups", train("rmsprop", [([0, 1], dict(lr=0.01, centered=True)),
                                              ([2, 3], dict(lr=0.002, momentum=0.5))])
    yield "adagrad/groups", train("adagrad", [([3, 0], dict(lr=0.1, lr_decay=0.1)),
                                              ([1, 2], dict(lr=0.05,
                                                            initial_accumulator=0.1))])
    # Parameters without a gradient are skipped: no decay, no state change.
    yield "sgd/frozen", train("sgd", [(ALL, dict(lr=0.05, momentum=0.9, weight_decay=0.1))],
                              frozen=[1])
    yield "adam/frozen", train("adam", [(ALL, dict(lr=0.01, weight_decay=0.1))], frozen=[3])
    yield "adamw/frozen", train("adamw", [(ALL, dict(lr=0.01, weight_decay=0.1))], frozen=[0])


def f32_cases():
    """Whole runs in float32: tapegrad rounds each torch operation to float as torch does."""
    f32 = torch.float32
    yield "sgd/nesterov/f32", train("sgd", [(ALL, dict(lr=0.05, momentum=0.9, nesterov=True,
                                                       weight_decay=0.01))], f32)
    yield "adam/amsgrad/f32", train("adam", [(ALL, dict(lr=0.02, amsgrad=True,
                                                        weight_decay=0.01))], f32)
    yield "adamw/plain/f32", train("adamw", [(ALL, dict(lr=0.01))], f32)
    yield "rmsprop/centered_momentum/f32", train("rmsprop", [(ALL, dict(
        lr=0.005, centered=True, momentum=0.8, weight_decay=0.01))], f32)
    yield "adagrad/lr_decay/f32", train("adagrad", [(ALL, dict(lr=0.1, lr_decay=0.05,
                                                               initial_accumulator=0.1))], f32)


def clip_cases():
    g1, g2, g3 = randn(3, 4), randn(3), randn(2, 2, 2) * 2
    for name, max_norm in (("clip/norm", 1.5), ("clip/norm_unclipped", 100.0)):
        ps = [torch.zeros_like(g, requires_grad=True) for g in (g1, g2, g3)]
        for p, g in zip(ps, (g1, g2, g3)):
            p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        yield name, {"g1": g1, "g2": g2, "g3": g3, "max_norm": max_norm, "total_norm": total,
                     "out1": ps[0].grad, "out2": ps[1].grad, "out3": ps[2].grad}
    ps = [torch.zeros_like(g, requires_grad=True) for g in (g1, g2, g3)]
    for p, g in zip(ps, (g1, g2, g3)):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_value_(ps, 0.8)
    yield "clip/value", {"g1": g1, "g2": g2, "g3": g3, "clip": 0.8, "out1": ps[0].grad,
                         "out2": ps[1].grad, "out3": ps[2].grad}
    w = randn(5, 3) * 1.2
    yield "clip/max_norm_rows", {"w": w, "max_norm": 1.5, "out": torch.renorm(w, 2, 0, 1.5)}
    k = randn(3, 2, 2, 2)
    yield "clip/max_norm_rows_4d", {"w": k, "max_norm": 2.5, "out": torch.renorm(k, 2, 0, 2.5)}


def cases():
    model = {"w1": MODEL[0].weight, "b1": MODEL[0].bias, "w2": MODEL[2].weight,
             "b2": MODEL[2].bias, "x": X, "y": Y}
    yield "model", model
    yield from optimizer_cases()
    yield from group_cases()
    yield from f32_cases()
    yield from clip_cases()
