"""The flow's CPU int8 path: the DiT estimator's linears and causal convs as int8 weights (torch dynamic quantization).

Kept apart from flow.py (which re-exports both names) so the module stays readable; the flow's numerics are
described there.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn


class ConvAsLinear(nn.Module):
    """A Conv1d (stride 1, no padding) as one matrix product over unfolded windows, so the int8 linear kernels
    can run it: (B, C_in, n + k - 1) -> (B, C_out, n), W (C_out, C_in·k) with the input index i·k + j."""

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        c_out, c_in, self.kernel = conv.weight.shape
        self.linear = nn.Linear(c_in * self.kernel, c_out, bias=conv.bias is not None)
        self.linear.weight.data = conv.weight.detach().reshape(c_out, c_in * self.kernel).clone()
        if conv.bias is not None:
            self.linear.bias.data = conv.bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        win = x.unfold(2, self.kernel, 1)                                       # (B, C_in, n, k)
        win = win.permute(0, 2, 1, 3).reshape(x.shape[0], win.shape[2], -1)     # (B, n, C_in·k)
        return self.linear(win).transpose(1, 2)


def quantize_estimator_int8(flow) -> int:
    """CPU fast path, in place: every nn.Linear of the DiT estimator (attention, MLP, adaLN, in/out
    projections) and its causal convs (as :class:`ConvAsLinear`) become int8 weights per output channel with
    int8 activations quantized per call (torch's dynamic quantization, fbgemm kernels on AVX-512 VNNI): all
    of the estimator's multiply-adds but attention's. The token encoder stays fp32. The mel moves by a few per
    cent (tests/decoder/test_flow.py, BENCHMARKS.md); the fp32 default keeps the official numerics. Returns
    the number of int8 linears."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic  # noqa: PLC0415
    estimator = flow.decoder.estimator
    for block in estimator.blocks:
        for i in (1, 6):                                       # CausalConvBlock.block: the two Conv1d
            block.conv.block[i] = ConvAsLinear(block.conv.block[i])
    n_linear = sum(isinstance(m, nn.Linear) for m in estimator.modules())
    estimator.requires_grad_(False)
    with warnings.catch_warnings():    # torch.ao.quantization's deprecation notice; the kernels are current
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning, FutureWarning))
        quantize_dynamic(estimator, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    return n_linear - sum(isinstance(m, nn.Linear) for m in estimator.modules())
