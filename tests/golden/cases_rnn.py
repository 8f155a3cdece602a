"""Golden cases for the recurrent cells (tests/test_nn_rnn.c): one LSTMCell / GRUCell step and
a cell unrolled over several time steps, with and without biases and initial states. Every
case stores the parameters (PyTorch's default init), the inputs, the outputs and the gradients
of sum(hs * R) (+ sum(c * Rc) for the LSTM) with respect to the input, the initial states and
every weight."""
import torch
import torch.nn as nn

KEYS = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def cell_case(name, kind, n, i, h, steps, bias=True, zero_state=False, single=False):
    """kind: "lstm" or "gru". single: one step through the cell (x [N, I]) instead of an unroll
    over steps (xs [T, N, I]). zero_state: no h0/c0 (zeros)."""
    lstm = kind == "lstm"
    cell = (nn.LSTMCell if lstm else nn.GRUCell)(i, h, bias=bias)
    params = [getattr(cell, k) for k in KEYS if hasattr(cell, k) and getattr(cell, k) is not None]
    xs = torch.randn(1 if single else steps, n, i).requires_grad_()
    states = [] if zero_state else [torch.randn(n, h).requires_grad_() for _ in
                                    range(2 if lstm else 1)]
    state = tuple(states) if lstm and states else (states[0] if states else None)
    hs = []
    for t in range(xs.shape[0]):
        state = cell(xs[t], state)
        hs.append(state[0] if lstm else state)
    hs = torch.stack(hs)
    r = torch.randn(hs.shape)
    loss = (hs * r).sum()
    out = {"bias": int(bias), "xs": xs[0] if single else xs}
    if not zero_state:
        out["h0"] = states[0]
        if lstm:
            out["c0"] = states[1]
    for k, p in zip(KEYS, params):
        out[k] = p
    out["hs"] = hs[0] if single else hs
    out["R"] = r[0] if single else r
    if lstm:
        rc = torch.randn(n, h)
        loss = loss + (state[1] * rc).sum()
        out["c_last"], out["Rc"] = state[1], rc
    inputs = [xs] + states + params
    grads = torch.autograd.grad(loss, inputs)
    names = ["g_xs"] + ["g_h0", "g_c0"][:len(states)] + ["g_" + k for k in KEYS[:len(params)]]
    for k, g in zip(names, grads):
        out[k] = g[0] if (single and k == "g_xs") else g
    return name, out


def cases():
    yield cell_case("lstm_step", "lstm", 3, 4, 5, 1, single=True)
    yield cell_case("lstm_step_nobias", "lstm", 2, 3, 4, 1, bias=False, single=True)
    yield cell_case("gru_step", "gru", 3, 4, 5, 1, single=True)
    yield cell_case("gru_step_nobias", "gru", 2, 3, 4, 1, bias=False, single=True)
    yield cell_case("lstm_unroll", "lstm", 2, 3, 5, 4)
    yield cell_case("lstm_unroll_zero_state", "lstm", 3, 2, 4, 3, zero_state=True)
    yield cell_case("gru_unroll", "gru", 2, 3, 4, 5)
    yield cell_case("gru_unroll_one_step", "gru", 2, 3, 4, 1, zero_state=True)
