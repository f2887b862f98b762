"""Bit-exact NumPy golden model of chanscale's integer inference (the arithmetic contract).

Everything that claims to be bit-exact (RTL testbenches, the host's model backend, the torch
export) checks against the functions here. NumPy only, explicit dtypes, no torch.

Contract (docs/contract.md):

* ``acc[o] = b[o] + sum_{i,kh,kw} x[i, y*s+kh-p, x*s+kw-p] * w[o,i,kh,kw]`` in int32, padding
  reads 0; an accumulator outside int32 is an error here, never a silent wrap;
* ``y = (acc*M + (1 << (S-1) if S > 0 else 0)) >> S`` (int64, arithmetic shift: round half up),
  then optional ReLU, then saturation to int8;
* optional 2x2/stride-2 max-pool (floor on odd sizes);
* the classifier's int32 accumulators are the logits.

Widths: a uniform width ``k/G`` or a per-layer list of active group counts, one per split
convolution. A layer reads its producer's active channels; the classifier that runs is the one for
the last convolution's active group count.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from fractions import Fraction

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .export import M_MAX, S_MAX, Export

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


class WidthError(ValueError):
    """A width or per-layer group list that the network cannot run."""


def requantize(acc, M, S, relu: bool) -> np.ndarray:
    """Requantize int32 accumulators to int8: multiply by M, shift right by S rounding half up
    (towards +inf), optional ReLU, saturate. ``M`` and ``S`` broadcast against ``acc``."""
    acc = np.asarray(acc, dtype=np.int64)
    M = np.asarray(M, dtype=np.int64)
    S = np.asarray(S, dtype=np.int64)
    if M.size and (M.min() < 1 or M.max() > M_MAX):
        raise ValueError(f"M must be in 1..{M_MAX}")
    if S.size and (S.min() < 0 or S.max() > S_MAX):
        raise ValueError(f"S must be in 0..{S_MAX}")
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise OverflowError("accumulator outside int32")
    rounding = np.where(S > 0, np.left_shift(np.int64(1), np.maximum(S - 1, 0)), 0)
    y = (acc * M + rounding) >> S
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8)


def conv_acc(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """int32 accumulators of a KxK convolution, NCHW x OIHW -> (N, O, Ho, Wo) int32."""
    if x.dtype != np.int8 or w.dtype != np.int8:
        raise TypeError(f"conv_acc takes int8 activations and weights, got {x.dtype} and {w.dtype}")
    if x.ndim != 4 or w.ndim != 4 or w.shape[1] != x.shape[1] or w.shape[2] != w.shape[3]:
        raise ValueError(f"weights {w.shape} do not fit input {x.shape}")
    return conv_acc_nhwc(x.transpose(0, 2, 3, 1), w, b, stride, padding).transpose(0, 3, 1, 2)


def conv_acc_nhwc(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """The same on NHWC activations -> (N, Ho, Wo, O) int32 (golden.run's internal layout).

    Uses a float GEMM only where it is provably exact: every partial sum is an integer of
    magnitude at most max|x| * max_o sum|w[o]|, so float32 is exact below 2**24 and float64
    below 2**53; beyond that it falls back to int64. An accumulator outside int32 raises.
    """
    N, H, W, C = x.shape
    O, Ci, K, K2 = w.shape
    if Ci != C or K != K2:
        raise ValueError(f"weights {w.shape} do not fit input {x.shape}")
    Ho, Wo = (H + 2 * padding - K) // stride + 1, (W + 2 * padding - K) // stride + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"a {K}x{K} kernel does not fit a {H}x{W} input with padding {padding}")
    xmax = max(-int(x.min()), int(x.max())) if x.size else 0
    bound = xmax * int(np.abs(w.astype(np.int32)).reshape(O, -1).sum(axis=1).max(initial=0))
    dtype = np.float32 if bound < (1 << 24) else np.float64 if bound < (1 << 53) else np.int64
    xp = np.pad(x.astype(dtype), ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    win = sliding_window_view(xp, (K, K), axis=(1, 2))[:, ::stride, ::stride][:, :Ho, :Wo]  # N Ho Wo C K K
    cols = win.reshape(N * Ho * Wo, C * K * K)
    acc = cols @ w.reshape(O, C * K * K).T.astype(dtype)
    b = np.asarray(b, dtype=np.int64)
    bmax = int(np.abs(b).max(initial=0))
    if bound + bmax <= INT32_MAX:  # provably inside int32: no int64 round trip needed
        out = acc.astype(np.int32)
        out += b.astype(np.int32)
    else:
        wide = acc.astype(np.int64) + b
        if wide.size and (wide.min() < INT32_MIN or wide.max() > INT32_MAX):
            raise OverflowError("convolution accumulator outside int32: the layer is out of the contract's scope")
        out = wide.astype(np.int32)
    return out.reshape(N, Ho, Wo, O)


def maxpool2x2(x: np.ndarray) -> np.ndarray:
    """2x2 / stride-2 max-pool of an NCHW tensor (floor on odd sizes)."""
    N, C, H, W = x.shape
    h, w = H // 2, W // 2
    return x[:, :, :2 * h, :2 * w].reshape(N, C, h, 2, w, 2).max(axis=(3, 5))


def width_groups(width, G: int) -> int:
    """Active group count for a uniform width (a multiple of 1/G in (0, 1])."""
    try:
        kf = float(Fraction(str(width).strip())) * G  # "0.25", "1/4", 0.25
    except (ValueError, TypeError, ZeroDivisionError, OverflowError):
        raise WidthError(f"width {width!r} is not a number; use one of "
                         f"{', '.join(str(k / G) for k in range(1, G + 1))}") from None
    k = round(kf) if math.isfinite(kf) else 0
    if abs(kf - k) > 1e-9 or not 1 <= k <= G:
        raise WidthError(f"width {width} is not a multiple of 1/{G} in (0, 1]; use one of "
                         f"{', '.join(str(k / G) for k in range(1, G + 1))}")
    return int(k)


def resolve_groups(export: Export, width=None, groups=None) -> tuple[int, ...]:
    """Per-layer active group counts from a uniform ``width`` or a per-layer ``groups`` list."""
    G, n = export.groups, len(export.convs)
    if (width is None) == (groups is None):
        raise WidthError("give either a uniform width or a per-layer group list")
    if width is not None:
        return (width_groups(width, G),) * n
    groups = tuple(groups)
    if len(groups) != n:
        raise WidthError(f"the per-layer group list needs {n} entries (one per convolution: "
                         f"{', '.join(c.name for c in export.convs)}), got {len(groups)}")
    for g in groups:
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or not 1 <= g <= G:
            raise WidthError(f"active group counts must be integers in 1..{G}, got {list(groups)}")
    return tuple(int(g) for g in groups)


def quantize_input(images: np.ndarray, shift: int) -> np.ndarray:
    """uint8 images -> int8 activations (``x = pixel >> shift``)."""
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    return (images >> shift).astype(np.int8)


@dataclass
class GoldenResult:
    groups: tuple[int, ...]
    acts: list  # per split convolution: int8 (N, active channels, H, W), after pool
    logits: np.ndarray  # int32 (N, classes)

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1)


def _maxpool_nhwc(x: np.ndarray) -> np.ndarray:
    N, H, W, C = x.shape
    h, w = H // 2, W // 2
    return x[:, :2 * h, :2 * w].reshape(N, h, 2, w, 2, C).max(axis=(2, 4))


def layer_forward(x: np.ndarray, layer, cout: int) -> np.ndarray:
    """One layer on int8 NCHW input ``x`` (its channel count selects the active input channels):
    int8 output after requantize/ReLU/pool, or int32 accumulators (N, classes, 1, 1) for the
    classifier."""
    return _layer_nhwc(x.transpose(0, 2, 3, 1), layer, cout).transpose(0, 3, 1, 2)


def _layer_nhwc(x: np.ndarray, layer, cout: int) -> np.ndarray:
    cin = x.shape[3]
    acc = conv_acc_nhwc(x, layer.weight[:cout, :cin], layer.bias[:cout], layer.stride, layer.padding)
    if layer.kind == "classifier":
        return acc
    # Requantization (M > 0), ReLU and saturation are monotone non-decreasing per channel, so
    # pooling the int32 accumulators first gives exactly the same int8 result, 4x cheaper.
    if layer.pool:
        acc = _maxpool_nhwc(acc)
    return requantize(acc, layer.M[:cout], layer.S[:cout], layer.relu)


def _check_images(export: Export, images: np.ndarray) -> None:
    first = export.convs[0]
    if images.ndim != 4 or images.shape[1:] != (first.in_channels, first.in_size, first.in_size):
        raise ValueError(f"images must be (N, {first.in_channels}, {first.in_size}, {first.in_size}), "
                         f"got {images.shape}")


def run(export: Export, images: np.ndarray, width=None, groups=None, batch: int = 250,
        keep_acts: bool = True) -> GoldenResult:
    """Integer inference of ``images`` (uint8, (N, C, H, W)) at a width or per-layer groups."""
    groups = resolve_groups(export, width, groups)
    _check_images(export, images)
    acts = [[] for _ in export.convs]
    logits = []
    for start in range(0, len(images), batch):
        x = quantize_input(images[start:start + batch], export.input_shift).transpose(0, 2, 3, 1)
        for i, (layer, _, cout) in enumerate(export.layers(groups)):
            x = _layer_nhwc(x, layer, cout)
            if i < len(acts) and keep_acts:
                acts[i].append(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        logits.append(x.reshape(len(x), -1))
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros((0,), np.int8)  # noqa: E731
    return GoldenResult(groups=groups, acts=[cat(a) for a in acts] if keep_acts else [],
                        logits=np.concatenate(logits).astype(np.int32))


def accuracies(export: Export, images: np.ndarray, labels: np.ndarray, profiles) -> dict[tuple[int, ...], float]:
    """``accuracy`` at each per-layer profile of ``profiles``, every layer output shared by the
    profiles that agree up to that layer computed once (what ``run`` computes, in less time)."""
    profiles = [resolve_groups(export, groups=p) for p in profiles]
    _check_images(export, images)
    correct = dict.fromkeys(profiles, 0)
    for start in range(0, len(images), 250):
        x0 = quantize_input(images[start:start + 250], export.input_shift).transpose(0, 2, 3, 1)
        memo = {}
        for p in profiles:
            x = x0
            for i, (layer, _, cout) in enumerate(export.layers(p)):
                key = p[:i + 1] if i < len(p) else p + (0,)  # a layer's output depends on the counts so far
                if key not in memo:
                    memo[key] = _layer_nhwc(x, layer, cout)
                x = memo[key]
            correct[p] += int((x.reshape(len(x), -1).argmax(axis=1) == labels[start:start + 250]).sum())
    return {p: correct[p] / len(images) for p in profiles}


def accuracy(export: Export, images: np.ndarray, labels: np.ndarray, width=None, groups=None) -> float:
    res = run(export, images, width=width, groups=groups, keep_acts=False)
    return float((res.predictions == labels).mean())
