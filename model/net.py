"""The dynamic-width CNN in PyTorch (float training and the fake-quant reference).

Width is a slice of one shared weight tensor (slimmable-style): at per-layer active group counts
``groups``, conv ``l`` computes its first ``groups[l] * C_l/G`` output channels from its producer's
active channels. Connectivity is block lower-triangular (a fixed mask): output group g reads input
groups 0..g only, so adding a group never changes what a narrower network computes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import NetConfig


def image_to_float(images_uint8: torch.Tensor, shift: int = 1) -> torch.Tensor:
    """The float input the network is trained on: exactly the int8 input ``pixel >> shift``
    times its scale ``1/(255 >> shift)``, so input quantization is lossless."""
    return (images_uint8.to(torch.int32) >> shift).to(torch.float32) / float(255 >> shift)


class GroupBatchNorm(nn.Module):
    """BatchNorm over the first ``x.shape[1]`` channels whose frozen channels keep their running
    statistics (they normalise with them in training too) and never update them."""

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("frozen", torch.zeros(channels, dtype=torch.bool))

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Normalise ``x``, whose channels are this layer's ``start .. start + x.shape[1] - 1``."""
        sl = slice(start, start + x.shape[1])
        rm, rv, fr = self.running_mean[sl], self.running_var[sl], self.frozen[sl]
        if self.training and not bool(fr.all()):
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
            with torch.no_grad():
                n = x.numel() / x.shape[1]
                upd = ~fr
                rm[upd] = (1 - self.momentum) * rm[upd] + self.momentum * mean[upd]
                rv[upd] = (1 - self.momentum) * rv[upd] + self.momentum * var[upd] * n / max(n - 1, 1)
            mean = torch.where(fr, rm, mean)
            var = torch.where(fr, rv, var)
        else:
            mean, var = rm, rv
        scale = self.weight[sl] / torch.sqrt(var + self.eps)
        return (x - mean[None, :, None, None]) * scale[None, :, None, None] + self.bias[sl, None, None]

    def fold(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) with BN(x) = x * scale + shift, from the running statistics."""
        scale = self.weight / torch.sqrt(self.running_var + self.eps)
        return scale, self.bias - self.running_mean * scale


def connectivity_mask(cfg: NetConfig, layer: int) -> torch.Tensor:
    """(O, I) 0/1 mask: output group g reads input groups 0..g (all inputs for the first layer)."""
    cout = cfg.convs[layer].out_channels
    cin = cfg.in_channels if layer == 0 else cfg.convs[layer - 1].out_channels
    if layer == 0 or cfg.connectivity == "dense":
        return torch.ones(cout, cin)
    go = torch.arange(cout) // (cout // cfg.groups)
    gi = torch.arange(cin) // (cin // cfg.groups)
    return (gi[None, :] <= go[:, None]).float()


class DynNet(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.weights = nn.ParameterList()
        self.bns = nn.ModuleList()
        cin = cfg.in_channels
        for i, c in enumerate(cfg.convs):
            w = torch.empty(c.out_channels, cin, c.kernel, c.kernel)
            nn.init.kaiming_normal_(w, nonlinearity="relu")
            mask = connectivity_mask(cfg, i)
            # Kaiming for the inputs each output really reads.
            w *= torch.sqrt(cin / mask.sum(dim=1)).view(-1, 1, 1, 1) * mask[:, :, None, None]
            self.weights.append(nn.Parameter(w))
            self.register_buffer(f"mask{i}", mask[:, :, None, None])
            self.bns.append(GroupBatchNorm(c.out_channels))
            cin = c.out_channels
        K, G, classes = cfg.classifier_kernel, cfg.groups, cfg.num_classes
        gs = cin // G
        widths = range(1, G + 1) if cfg.head == "per_width" else [G]
        self.head_w = nn.ParameterList()
        self.head_b = nn.ParameterList()
        for k in widths:
            bound = 1 / math.sqrt(k * gs * K * K)
            self.head_w.append(nn.Parameter(torch.empty(classes, k * gs, K, K).uniform_(-bound, bound)))
            self.head_b.append(nn.Parameter(torch.zeros(classes)))

    def mask(self, i: int) -> torch.Tensor:
        return getattr(self, f"mask{i}")

    def full_groups(self) -> tuple[int, ...]:
        return (self.cfg.groups,) * len(self.cfg.convs)

    def head(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Classifier weight and bias for ``k`` active input groups."""
        if self.cfg.head == "per_width":
            return self.head_w[k - 1], self.head_b[k - 1]
        gs = self.head_w[0].shape[1] // self.cfg.groups
        return self.head_w[0][:, :k * gs], self.head_b[0]

    def forward(self, x: torch.Tensor, groups=None, features: list | None = None,
                train_group: int | None = None) -> torch.Tensor:
        """Logits at per-layer active group counts (default: full width). If ``features`` is a
        list, each conv's activation after ReLU, before pooling, is appended to it.

        ``train_group`` (incremental training, stage ``train_group + 1``): every other group is
        frozen, so the frozen groups are computed without autograd and only this group's channels
        carry gradients. The logits are the same computation; the backward pass shrinks to the
        trained group's share (block lower-triangular: frozen groups never read it)."""
        groups = groups or self.full_groups()
        for i, spec in enumerate(self.cfg.convs):
            gs = spec.out_channels // self.cfg.groups
            cout = groups[i] * gs
            w = (self.weights[i] * self.mask(i))[:cout, :x.shape[1]]
            a, b = (train_group or 0) * gs, ((train_group or 0) + 1) * gs
            if train_group is None or features is not None or cout > b or self.cfg.connectivity == "dense":
                x = self._layer(i, x, w, features)
                continue
            # Frozen output groups read frozen input groups only: they need no gradient.
            a_in = x.shape[1] if i == 0 else min(x.shape[1], train_group * x.shape[1] // groups[i - 1])
            parts = []
            if a:
                with torch.no_grad():
                    parts.append(self._layer(i, x[:, :a_in].detach(), w[:min(a, cout), :a_in].detach()))
            if cout > a:
                parts.append(self._layer(i, x, w[a:b], start=a))
            x = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
        w, b = self.head(groups[-1])
        return F.conv2d(x, w, b).flatten(1)

    def _layer(self, i: int, x: torch.Tensor, w: torch.Tensor, features: list | None = None,
               start: int = 0) -> torch.Tensor:
        """Conv ``i`` with weights ``w`` (its output channels ``start ..``), BatchNorm, ReLU,
        pool. ReLU follows the pool when nobody collects features: max and ReLU commute exactly,
        and the ReLU then touches a quarter of the values."""
        spec = self.cfg.convs[i]
        x = self.bns[i](F.conv2d(x, w, stride=spec.stride, padding=spec.padding), start)
        if features is not None or not spec.pool:
            x = F.relu(x) if spec.relu else x
            if features is not None:
                features.append(x)
            return F.max_pool2d(x, 2) if spec.pool else x
        x = F.max_pool2d(x, 2)
        return F.relu(x) if spec.relu else x

    def folded(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv ``i``'s weights and bias with BatchNorm folded in (masked, full width)."""
        scale, shift = self.bns[i].fold()
        w = self.weights[i] * self.mask(i) * scale[:, None, None, None]
        return w.detach(), shift.detach()
