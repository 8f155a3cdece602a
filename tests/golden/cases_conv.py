"""Golden cases for convolution, pooling and resampling (tests/test_nn_conv.c).

Every case stores the input x (and weight w, bias b for convolutions), the op's options as
numbers, the output y, a random weight r and the gradients of sum(y * r): gx, gw, gb. The case
name starts with the op: conv2d_, conv_transpose2d_, max_pool2d_, avg_pool2d_, adaptive_,
global_, upsample_size_, upsample_scale_.
"""
import torch
import torch.nn.functional as F


def rand(*shape):
    """Normal values rounded to multiples of 1/64: exact in f32 and short in the file."""
    return (torch.randn(shape) * 64).round() / 64


def distinct(*shape):
    """Values 1/8 apart in random order (no ties between the elements of a max window)."""
    n = 1
    for d in shape:
        n *= d
    return ((torch.randperm(n).double() - n // 2) / 8).reshape(shape)


def finish(name, inputs, y, opts):
    """The case: inputs, options, y, r and the gradients of sum(y * r) w.r.t. the inputs."""
    r = rand(*y.shape)
    keys = list(inputs)
    grads = torch.autograd.grad((y * r).sum(), [inputs[k] for k in keys])
    case = {k: v.detach() for k, v in inputs.items()}
    case.update(opts)
    case["y"] = y.detach()
    case["r"] = r
    for k, g in zip(keys, grads):
        case["g" + k] = g
    return name, case


def conv(name, n, c, h, w, oc, kh, kw, stride=(1, 1), pad=(0, 0), dil=(1, 1), groups=1,
         bias=True):
    inputs = {"x": rand(n, c, h, w).requires_grad_(),
              "w": rand(oc, c // groups, kh, kw).requires_grad_()}
    if bias:
        inputs["b"] = rand(oc).requires_grad_()
    y = F.conv2d(inputs["x"], inputs["w"], inputs.get("b"), stride, pad, dil, groups)
    opts = {"stride_h": stride[0], "stride_w": stride[1], "pad_h": pad[0], "pad_w": pad[1],
            "dil_h": dil[0], "dil_w": dil[1], "groups": groups}
    return finish("conv2d_" + name, inputs, y, opts)


def conv_t(name, n, c, h, w, oc, kh, kw, stride=(1, 1), pad=(0, 0), opad=(0, 0), dil=(1, 1),
           groups=1, bias=True):
    inputs = {"x": rand(n, c, h, w).requires_grad_(),
              "w": rand(c, oc // groups, kh, kw).requires_grad_()}
    if bias:
        inputs["b"] = rand(oc).requires_grad_()
    y = F.conv_transpose2d(inputs["x"], inputs["w"], inputs.get("b"), stride, pad, opad, groups,
                           dil)
    opts = {"stride_h": stride[0], "stride_w": stride[1], "pad_h": pad[0], "pad_w": pad[1],
            "dil_h": dil[0], "dil_w": dil[1], "groups": groups, "opad_h": opad[0],
            "opad_w": opad[1]}
    return finish("conv_transpose2d_" + name, inputs, y, opts)


def pool_opts(kernel, stride, pad, dil=(1, 1), ceil=False, include_pad=True):
    return {"kernel_h": kernel[0], "kernel_w": kernel[1], "stride_h": stride[0],
            "stride_w": stride[1], "pad_h": pad[0], "pad_w": pad[1], "dil_h": dil[0],
            "dil_w": dil[1], "ceil_mode": ceil, "count_include_pad": include_pad}


def max_pool(name, shape, kernel, stride, pad=(0, 0), dil=(1, 1), ceil=False):
    x = distinct(*shape).requires_grad_()
    y = F.max_pool2d(x, kernel, stride, pad, dil, ceil)
    return finish("max_pool2d_" + name, {"x": x}, y, pool_opts(kernel, stride, pad, dil, ceil))


def avg_pool(name, shape, kernel, stride, pad=(0, 0), ceil=False, include_pad=True):
    x = rand(*shape).requires_grad_()
    y = F.avg_pool2d(x, kernel, stride, pad, ceil, include_pad)
    return finish("avg_pool2d_" + name, {"x": x}, y,
                  pool_opts(kernel, stride, pad, ceil=ceil, include_pad=include_pad))


def adaptive(name, shape, out):
    x = rand(*shape).requires_grad_()
    y = F.adaptive_avg_pool2d(x, out)
    return finish("adaptive_" + name, {"x": x}, y, {"out_h": out[0], "out_w": out[1]})


def upsample_size(name, shape, size, mode, align=False):
    x = rand(*shape).requires_grad_()
    y = F.interpolate(x, size=size, mode=mode, align_corners=align if mode == "bilinear" else None)
    return finish("upsample_size_" + name, {"x": x}, y,
                  {"out_h": size[0], "out_w": size[1], "bilinear": mode == "bilinear",
                   "align_corners": align})


def upsample_scale(name, shape, scale, mode, align=False):
    x = rand(*shape).requires_grad_()
    y = F.interpolate(x, scale_factor=scale, mode=mode,
                      align_corners=align if mode == "bilinear" else None)
    return finish("upsample_scale_" + name, {"x": x}, y,
                  {"scale_h": float(scale[0]), "scale_w": float(scale[1]),
                   "bilinear": mode == "bilinear", "align_corners": align})


def cases():
    yield conv("basic", 2, 3, 7, 6, 4, 3, 3)
    yield conv("stride2_pad1_nonsquare_nobias", 2, 2, 9, 7, 3, 3, 2, stride=(2, 2), pad=(1, 1),
               bias=False)
    yield conv("dilation2_mixed", 2, 2, 7, 8, 2, 3, 3, stride=(1, 2), pad=(2, 1), dil=(2, 2))
    yield conv("groups2", 2, 4, 5, 5, 4, 3, 3, stride=(2, 2), pad=(1, 1), groups=2)
    yield conv("depthwise_mult2", 2, 3, 5, 5, 6, 3, 3, pad=(1, 1), groups=3)
    yield conv("depthwise_dilated", 2, 4, 7, 8, 4, 2, 3, stride=(2, 1), dil=(1, 2), groups=4,
               bias=False)
    yield conv("pointwise", 3, 5, 4, 3, 2, 1, 1)
    yield conv("batch1_groups2", 1, 4, 6, 5, 4, 3, 2, pad=(1, 0), dil=(1, 2), groups=2)
    yield conv("whole_input", 2, 3, 4, 5, 3, 4, 5)
    yield conv("stride3_odd", 2, 2, 10, 8, 2, 4, 3, stride=(3, 2), pad=(1, 2))
    # few positions and many channels: the batch-merged GEMM layout
    yield conv("merged_groups2", 2, 4, 3, 4, 16, 2, 3, stride=(2, 1), groups=2)
    yield conv("merged_dilated", 2, 6, 4, 4, 12, 2, 2, stride=(2, 2), dil=(2, 2), pad=(1, 0),
               bias=False)

    yield conv_t("basic", 2, 3, 4, 3, 3, 3, 3)
    yield conv_t("stride2_pad1_opad1", 2, 3, 4, 3, 2, 3, 3, stride=(2, 2), pad=(1, 1),
                 opad=(1, 1))
    yield conv_t("nonsquare_dilated_nobias", 2, 2, 3, 3, 2, 2, 3, stride=(2, 3), pad=(0, 1),
                 opad=(1, 2), dil=(1, 2), bias=False)
    yield conv_t("groups2", 2, 4, 3, 3, 6, 3, 3, stride=(2, 2), pad=(1, 1), opad=(1, 0),
                 groups=2)
    yield conv_t("opad_from_dilation", 2, 2, 3, 3, 2, 3, 2, stride=(1, 2), opad=(1, 1),
                 dil=(2, 3))
    yield conv_t("opad_uncovers_pad", 2, 2, 3, 3, 2, 3, 2, stride=(1, 1), pad=(1, 1),
                 opad=(1, 1), dil=(2, 2))
    yield conv_t("batch1_depthwise", 1, 3, 4, 4, 3, 2, 2, stride=(2, 2), groups=3)
    yield conv_t("pad_exceeds_opad", 2, 2, 5, 4, 2, 3, 3, stride=(2, 1), pad=(2, 1),
                 opad=(1, 0))
    yield conv_t("merged_groups2", 2, 12, 1, 2, 4, 3, 3, stride=(2, 2), pad=(1, 1), opad=(1, 1),
                 groups=2)

    yield max_pool("k2", (2, 3, 6, 6), (2, 2), (2, 2))
    yield max_pool("k3_s2_p1_odd", (2, 2, 7, 9), (3, 3), (2, 2), pad=(1, 1))
    yield max_pool("ceil_extends", (2, 2, 6, 8), (3, 3), (2, 2), pad=(1, 1), ceil=True)
    yield max_pool("ceil_last_window_rule", (1, 2, 5, 5), (2, 2), (2, 2), pad=(1, 1), ceil=True)
    yield max_pool("ceil_no_pad", (2, 1, 8, 7), (3, 3), (2, 2), ceil=True)
    yield max_pool("dilation2", (2, 2, 8, 7), (3, 3), (1, 1), pad=(1, 1), dil=(2, 2))
    yield max_pool("nonsquare_ceil", (2, 2, 7, 8), (2, 3), (1, 2), pad=(1, 1), dil=(1, 2),
                   ceil=True)

    yield avg_pool("k2", (2, 2, 6, 4), (2, 2), (2, 2))
    yield avg_pool("k3_s2_p1_include", (2, 1, 7, 8), (3, 3), (2, 2), pad=(1, 1))
    yield avg_pool("k3_s2_p1_exclude", (2, 1, 7, 8), (3, 3), (2, 2), pad=(1, 1),
                   include_pad=False)
    yield avg_pool("ceil_include", (2, 1, 6, 8), (3, 3), (2, 2), pad=(1, 1), ceil=True)
    yield avg_pool("ceil_exclude", (2, 1, 6, 8), (3, 3), (2, 2), pad=(1, 1), ceil=True,
                   include_pad=False)
    yield avg_pool("ceil_no_pad", (2, 1, 8, 7), (3, 3), (2, 2), ceil=True)
    yield avg_pool("nonsquare", (2, 2, 7, 6), (3, 2), (2, 1), pad=(1, 0))
    yield avg_pool("nonsquare_ceil_exclude", (2, 2, 5, 7), (2, 3), (2, 2), pad=(1, 1), ceil=True,
                   include_pad=False)

    yield adaptive("7x5_to_3x2", (2, 2, 7, 5), (3, 2))
    yield adaptive("6x6_to_4x4", (2, 2, 6, 6), (4, 4))
    yield adaptive("5x7_to_1x1", (2, 2, 5, 7), (1, 1))
    yield adaptive("3x3_to_5x4", (1, 2, 3, 3), (5, 4))
    x = rand(2, 3, 5, 4).requires_grad_()
    yield finish("global_avg_pool2d", {"x": x}, x.mean((2, 3), keepdim=True), {})

    yield upsample_size("nearest_up", (2, 1, 3, 4), (7, 8), "nearest")
    yield upsample_size("nearest_down", (2, 2, 5, 5), (3, 2), "nearest")
    yield upsample_size("nearest_mixed", (1, 2, 4, 6), (9, 6), "nearest")
    yield upsample_size("bilinear_up", (2, 2, 3, 4), (7, 5), "bilinear")
    yield upsample_size("bilinear_up_aligned", (2, 2, 3, 4), (7, 5), "bilinear", True)
    yield upsample_size("bilinear_down", (2, 1, 6, 7), (4, 3), "bilinear")
    yield upsample_size("bilinear_down_aligned", (2, 1, 6, 7), (4, 3), "bilinear", True)
    yield upsample_size("bilinear_to_1", (2, 1, 4, 5), (1, 3), "bilinear")
    yield upsample_size("bilinear_to_1_aligned", (2, 1, 4, 5), (1, 3), "bilinear", True)
    yield upsample_scale("nearest_2", (2, 1, 4, 3), (2, 2), "nearest")
    yield upsample_scale("nearest_1_5", (2, 1, 4, 5), (1.5, 1.5), "nearest")
    yield upsample_scale("nearest_2_3_x_0_7", (1, 2, 4, 6), (2.3, 0.7), "nearest")
    yield upsample_scale("nearest_twice_not_2", (1, 1, 10, 3), (2.05, 3.4), "nearest")
    yield upsample_scale("bilinear_2", (2, 2, 3, 4), (2, 2), "bilinear")
    yield upsample_scale("bilinear_1_7", (2, 2, 3, 4), (1.7, 1.7), "bilinear")
    yield upsample_scale("bilinear_2_5_aligned", (2, 1, 3, 4), (2.5, 2.5), "bilinear", True)
    yield upsample_scale("bilinear_0_6_x_1_3", (2, 1, 5, 4), (0.6, 1.3), "bilinear")
