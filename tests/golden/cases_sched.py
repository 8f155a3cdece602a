"""Golden cases for the learning-rate schedules (tests/test_optim.c reads sched.txt).

Each case "<schedule>/<variant>" drives an SGD optimizer with two parameter groups whose
learning rates start at `base` [2] with a torch.optim.lr_scheduler scheduler and stores `lr`
[STEPS + 1, 2]: both groups' rates after construction and after each of STEPS steps. `kind` is
the schedule (step 0, multistep 1, table 2, exponential 3, cosine 4, inverse_time 5, warmup 6,
plateau 7) and its options use the names of the tg_sched_*_new arguments. A warmup holds
`warmup`, `start_factor` and `after` (the kind of the schedule that follows it, -1 for none)
with that schedule's options beside its own; PyTorch's equivalent is
SequentialLR([LinearLR(start_factor, 1.0, warmup), after], milestones=[warmup]). The table and
inverse-time schedules are LambdaLR with one lambda for both groups (the table's lambda is the
table value over group 0's base rate). Plateau cases hold the metric fed at every step
(`metrics` [STEPS]) and the options of tg_plateau_opts that differ from the defaults.
"""
import warnings

import torch
from torch.optim import lr_scheduler as L

STEPS = 30
BASE = (0.1, 0.02)
KINDS = {"step": 0, "multistep": 1, "table": 2, "exponential": 3, "cosine": 4,
         "inverse_time": 5, "warmup": 6, "plateau": 7}

LOSSES = [1.0, 0.8, 0.7, 0.7, 0.69995, 0.71, 0.65, 0.65, 0.65, 0.65, 0.6, 0.6, 0.61, 0.62, 0.6,
          0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.45, 0.45, 0.46, 0.44, 0.44, 0.44, 0.44, 0.44, 0.44]
ACCURACIES = [1.0 - v for v in LOSSES]


def optimizer():
    params = [torch.zeros(1, requires_grad=True) for _ in BASE]
    return torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, BASE)],
                           lr=BASE[0])


def make(kind, opt, o):
    """The PyTorch scheduler for tapegrad schedule `kind` with options o."""
    if kind == "step":
        return L.StepLR(opt, o["step_size"], o["gamma"])
    if kind == "multistep":
        return L.MultiStepLR(opt, o["milestones"], o["gamma"])
    if kind == "exponential":
        return L.ExponentialLR(opt, o["gamma"])
    if kind == "cosine":
        return L.CosineAnnealingLR(opt, o["t_max"], o["eta_min"])
    if kind == "table":
        table = list(zip(o["milestones"], o["values"]))

        def factor(t):
            passed = [v for m, v in table if m <= t]
            return passed[-1] / BASE[0] if passed else 1.0
        return L.LambdaLR(opt, factor)
    if kind == "inverse_time":
        rate, steps = o["rate"], o["decay_steps"]
        if o["staircase"]:
            return L.LambdaLR(opt, lambda t: 1.0 / (1.0 + rate * (t // steps)))
        return L.LambdaLR(opt, lambda t: 1.0 / (1.0 + rate * (t / steps)))
    raise ValueError(kind)


def run(kind, metrics=None, **o):
    opt = optimizer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "warmup":
            after = make(o["after"], opt, o) if o["after"] else None
            linear = L.LinearLR(opt, o["start_factor"], 1.0, o["warmup"])
            sched = L.SequentialLR(opt, [linear, after], [o["warmup"]]) if after else linear
        elif kind == "plateau":
            sched = L.ReduceLROnPlateau(opt, **o)
        else:
            sched = make(kind, opt, o)
        lrs = [[g["lr"] for g in opt.param_groups]]
        for t in range(STEPS):
            opt.step()
            if kind == "plateau":
                sched.step(metrics[t])
            else:
                sched.step()
            lrs.append([g["lr"] for g in opt.param_groups])
    case = {"kind": KINDS[kind], "base": torch.tensor(BASE)}
    for key, value in o.items():
        if key == "after":
            case[key] = KINDS[value] if value else -1
        elif key == "mode":
            case["maximize"] = int(value == "max")
        elif key == "threshold_mode":
            case["threshold_abs"] = int(value == "abs")
        elif isinstance(value, bool):
            case[key] = int(value)
        elif isinstance(value, list):
            case[key] = torch.tensor(value)
        else:
            case[key] = value
    if metrics is not None:
        case["metrics"] = torch.tensor(metrics)
    case["lr"] = torch.tensor(lrs)
    return case


def schedule_cases():
    yield "step/s3", run("step", step_size=3, gamma=0.5)
    yield "step/s1", run("step", step_size=1, gamma=0.9)
    yield "multistep/basic", run("multistep", milestones=[5, 12, 20], gamma=0.1)
    yield "multistep/repeated", run("multistep", milestones=[10, 4, 4], gamma=0.5)
    yield "multistep/at_zero", run("multistep", milestones=[0, 7], gamma=0.3)
    yield "table/notes", run("table", milestones=[5, 15, 18], values=[1e-3, 1e-4, 1e-5])
    yield "table/at_zero", run("table", milestones=[0, 10], values=[0.05, 0.01])
    yield "exponential/basic", run("exponential", gamma=0.9)
    yield "cosine/t10", run("cosine", t_max=10, eta_min=0.0)
    yield "cosine/t7_eta_min", run("cosine", t_max=7, eta_min=0.001)
    yield "inverse_time/smooth", run("inverse_time", rate=0.5, decay_steps=4, staircase=False)
    yield "inverse_time/staircase", run("inverse_time", rate=0.5, decay_steps=4,
                                        staircase=True)


def warmup_cases():
    yield "warmup/alone", run("warmup", warmup=5, start_factor=0.1, after=None)
    yield "warmup/step", run("warmup", warmup=5, start_factor=0.2, after="step", step_size=4,
                             gamma=0.5)
    yield "warmup/multistep", run("warmup", warmup=3, start_factor=0.5, after="multistep",
                                  milestones=[2, 10], gamma=0.1)
    yield "warmup/table", run("warmup", warmup=4, start_factor=0.25, after="table",
                              milestones=[5, 15], values=[0.01, 0.001])
    yield "warmup/exponential", run("warmup", warmup=6, start_factor=0.01, after="exponential",
                                    gamma=0.95)
    yield "warmup/cosine", run("warmup", warmup=5, start_factor=0.01, after="cosine", t_max=25,
                               eta_min=1e-4)
    yield "warmup/cosine_restart", run("warmup", warmup=2, start_factor=0.3, after="cosine",
                                       t_max=6, eta_min=0.0)
    yield "warmup/inverse_time", run("warmup", warmup=3, start_factor=0.1,
                                     after="inverse_time", rate=1.0, decay_steps=2,
                                     staircase=True)


def plateau_cases():
    yield "plateau/defaults", run("plateau", LOSSES)
    yield "plateau/min_rel", run("plateau", LOSSES, patience=2, factor=0.5, threshold=1e-4)
    yield "plateau/min_abs", run("plateau", LOSSES, patience=2, factor=0.5, threshold=1e-5,
                                 threshold_mode="abs")
    yield "plateau/max_rel", run("plateau", ACCURACIES, mode="max", patience=1, factor=0.3,
                                 threshold=0.01)
    yield "plateau/max_abs", run("plateau", ACCURACIES, mode="max", patience=2,
                                 threshold=0.005, threshold_mode="abs")
    yield "plateau/cooldown", run("plateau", LOSSES, patience=1, cooldown=3, factor=0.5)
    yield "plateau/min_lr", run("plateau", LOSSES, patience=1, factor=0.5, min_lr=0.004)
    yield "plateau/eps", run("plateau", LOSSES, patience=0, factor=0.9, eps=5e-3)


def cases():
    yield from schedule_cases()
    yield from warmup_cases()
    yield from plateau_cases()
