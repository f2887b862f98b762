"""Post-training int8 quantization of a trained DynNet into one export that serves every width.

* Weights: int8 in [-127, 127], one scale per output channel, BatchNorm folded first.
* Activations: symmetric int8. The scale is calibrated on training images per channel *group*
  (a per-tensor scale per group): group g's activations depend only on groups 0..g, so its scale
  never changes when later groups are trained and the narrower networks stay bit-identical. The
  per-input-channel scales are folded into the next layer's weights before those are quantized, so
  the hardware still sees only int8 weights and a per-output-channel (M, S).
* Requantization: real multiplier s_w[o] / s_out[o] = M * 2**-S, 2**15 <= M < 2**16 where S <= 47.
* Classifier: one weight scale per head (per tensor), so its raw int32 accumulators compare
  across classes and are the logits.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .export import M_MAX, S_MAX, save_export
from .net import DynNet, image_to_float

INPUT_SHIFT = 1  # x_int8 = pixel >> 1 (0..127), real value x / 127


def quantize_multiplier(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Real multipliers m > 0 -> (M, S) int32 with m ~ M * 2**-S, M 16-bit, S in 0..47."""
    Ms, Ss = [], []
    for v in np.asarray(m, dtype=np.float64).ravel():
        if not v > 0 or not math.isfinite(v):
            raise ValueError(f"requantization multiplier must be positive and finite, got {v}")
        S = 15 - math.floor(math.log2(v))
        M = round(v * 2.0 ** S)
        if M > M_MAX:
            M, S = M // 2, S - 1
        if S < 0:
            raise ValueError(f"multiplier {v} >= 2**16 cannot be represented with S >= 0")
        if S > S_MAX:
            S, M = S_MAX, max(1, round(v * 2.0 ** S_MAX))
        Ms.append(M)
        Ss.append(S)
    return np.array(Ms, np.int32), np.array(Ss, np.int32)


def calibrate(net: DynNet, images: np.ndarray, percentile: float = 99.99, batch: int = 500) -> list[np.ndarray]:
    """Per conv layer, the activation scale of each channel group (float64 (G,)), from the
    float network at full width. Group g's statistics only involve groups 0..g."""
    G = net.cfg.groups
    net.eval()
    feats_all: list[list[np.ndarray]] = [[] for _ in net.cfg.convs]
    with torch.no_grad():
        for s in range(0, len(images), batch):
            feats: list = []
            net(image_to_float(torch.from_numpy(images[s:s + batch]), INPUT_SHIFT), features=feats)
            for i, f in enumerate(feats):
                feats_all[i].append(f.numpy())
    scales = []
    for i, parts in enumerate(feats_all):
        a = np.abs(np.concatenate(parts))
        gs = a.shape[1] // G
        s = [float(np.percentile(a[:, g * gs:(g + 1) * gs], percentile)) / 127 for g in range(G)]
        scales.append(np.array([v if v > 0 else 1.0 for v in s]))
    return scales


def quantize_weights(w: np.ndarray, per_tensor: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights in [-127, 127]; scale per output channel (or one per tensor)."""
    amax = np.abs(w).max() if per_tensor else np.abs(w).reshape(len(w), -1).max(axis=1)
    s = np.where(amax > 0, amax / 127, 1.0) * np.ones(len(w))
    q = np.clip(np.rint(w / s[:, None, None, None]), -127, 127).astype(np.int8)
    return q, s


def _int32(x: np.ndarray, what: str) -> np.ndarray:
    r = np.rint(x)
    if np.abs(r).max(initial=0) >= 2 ** 31:
        raise OverflowError(f"{what} does not fit int32")
    return r.astype(np.int32)


def quantize(net: DynNet, act_scales: list[np.ndarray]) -> tuple[list[dict], dict, dict]:
    """(layer metadata, arrays, float scales) of the int8 export."""
    cfg, G = net.cfg, net.cfg.groups
    s_in = np.full(cfg.in_channels, 1.0 / (255 >> INPUT_SHIFT))
    layers, arrays, scales = [], {}, {"input": float(s_in[0]), "act": [], "weight": []}
    sizes = cfg.feature_sizes
    for i, spec in enumerate(cfg.convs):
        w_f, b_f = (t.double().numpy() for t in net.folded(i))
        wq, s_w = quantize_weights(w_f * s_in[None, :, None, None])
        s_out = np.repeat(act_scales[i], spec.out_channels // G)
        M, S = quantize_multiplier(s_w / s_out)
        arrays.update({f"{spec.name}.weight": wq, f"{spec.name}.bias": _int32(b_f / s_w, f"{spec.name} bias"),
                       f"{spec.name}.M": M, f"{spec.name}.S": S})
        layers.append(dict(name=spec.name, kind="conv", out_channels=spec.out_channels, kernel=spec.kernel,
                           stride=spec.stride, padding=spec.padding, relu=spec.relu, pool=spec.pool,
                           in_size=sizes[i]))
        scales["act"].append(act_scales[i].tolist())
        scales["weight"].append(s_w.tolist())
        s_in = s_out
    K = cfg.classifier_kernel
    layers.append(dict(name="classifier", kind="classifier", out_channels=cfg.num_classes, kernel=K,
                       stride=1, padding=0, relu=False, pool=False, in_size=sizes[-1]))
    heads = range(1, G + 1) if cfg.head == "per_width" else [G]
    for k in heads:
        w, b = (t.detach().double().numpy() for t in net.head(k))
        wq, s_w = quantize_weights(w * s_in[None, :w.shape[1], None, None], per_tensor=True)
        M, S = quantize_multiplier(s_w)
        p = f"classifier.k{k}" if cfg.head == "per_width" else "classifier"
        arrays.update({f"{p}.weight": wq, f"{p}.bias": _int32(b / s_w, "classifier bias"), f"{p}.M": M, f"{p}.S": S})
        scales["weight"].append(s_w.tolist())
    return layers, arrays, scales


def export(net: DynNet, calib_images: np.ndarray, path, extra_meta: dict | None = None,
           percentile: float = 99.99):
    """Calibrate, quantize and write ``path``; returns the loaded Export."""
    from .export import load_export
    act_scales = calibrate(net, calib_images, percentile)
    layers, arrays, scales = quantize(net, act_scales)
    cfg = net.cfg
    meta = dict(groups=cfg.groups, head=cfg.head,
                connectivity="block_lower_triangular" if cfg.connectivity == "triangular" else "dense",
                input=dict(channels=cfg.in_channels, size=cfg.in_size, shift=INPUT_SHIFT,
                           scale=scales["input"], doc="x_int8 = uint8_pixel >> shift; real = x * scale"),
                layers=layers, scales=scales, calibration=dict(
                    images=int(len(calib_images)), percentile=percentile))
    meta.update(extra_meta or {})
    save_export(path, meta, arrays)
    return load_export(path)


class FakeQuant:
    """Torch fake-quant reference: the float network with weights and activations quantized and
    dequantized (float32 arithmetic, round-half-even, float rescale instead of M/S). It is the
    QAT-style simulation the integer golden model must agree with."""

    def __init__(self, net: DynNet, export):
        self.net, self.cfg = net, net.cfg
        self.act = [torch.tensor(np.repeat(a, c.out_channels // net.cfg.groups), dtype=torch.float32)
                    for a, c in zip(export.meta["scales"]["act"], net.cfg.convs)]
        s_in = torch.full((net.cfg.in_channels,), export.meta["scales"]["input"], dtype=torch.float64)
        self.w, self.b = [], []
        for i in range(len(net.cfg.convs)):
            w_f, b_f = (t.double() for t in net.folded(i))
            w_eff = w_f * s_in[None, :, None, None]
            wq, s_w = quantize_weights(w_eff.numpy())
            s_w = torch.from_numpy(s_w)
            self.w.append((torch.from_numpy(wq).double() * s_w[:, None, None, None] / s_in[None, :, None, None]).float())
            self.b.append((torch.round(b_f / s_w) * s_w).float())
            s_in = self.act[i].double()
        self.s_last = s_in

    @torch.no_grad()
    def __call__(self, images_uint8: np.ndarray, groups) -> torch.Tensor:
        x = image_to_float(torch.from_numpy(images_uint8), INPUT_SHIFT)
        for i, spec in enumerate(self.cfg.convs):
            cout = groups[i] * spec.out_channels // self.cfg.groups
            y = F.conv2d(x, self.w[i][:cout, :x.shape[1]], self.b[i][:cout], spec.stride, spec.padding)
            s = self.act[i][:cout, None, None]
            lo = 0 if spec.relu else -128
            x = torch.clamp(torch.round(y / s), lo, 127) * s
            if spec.pool:
                x = F.max_pool2d(x, 2)
        # The shared head is quantized once over all its columns, as in the export.
        w, b = self.net.head(groups[-1] if self.cfg.head == "per_width" else self.cfg.groups)
        s_in = self.s_last[None, :w.shape[1], None, None]
        wq, s_w = quantize_weights((w.detach().double() * s_in).numpy(), per_tensor=True)
        w_deq = (torch.from_numpy(wq).double() * float(s_w[0]) / s_in)[:, :x.shape[1]]
        b_deq = torch.round(b.detach().double() / float(s_w[0])) * float(s_w[0])
        return F.conv2d(x, w_deq.float(), b_deq.float()).flatten(1)
