"""Deliberately naive reference arithmetic for the tests (not a test module).

Explicit Python loops over Python ints, written from docs/contract.md ("The arithmetic
contract") alone: nothing here calls model.golden, so agreement with it is an independent check.
Tensors are nested Python lists (N, C, H, W) of ints; ``to_list``/``to_array`` convert.
"""
from __future__ import annotations

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def to_list(a) -> list:
    """numpy array -> nested lists of Python ints."""
    return np.asarray(a).astype(np.int64).tolist()


def to_array(nested, dtype=np.int64) -> np.ndarray:
    return np.array(nested, dtype=np.int64).astype(dtype)


def conv_acc(x, w, b, stride: int, padding: int) -> list:
    """acc[n][o][y][x] = b[o] + sum_{i,kh,kw} x[n][i][y*s+kh-p][x*s+kw-p] * w[o][i][kh][kw],
    out-of-bounds reads are 0. Plain Python ints (no wrap-around possible)."""
    x, w, b = to_list(x), to_list(w), to_list(b)
    N, C, H, W = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    O, K = len(w), len(w[0][0])
    assert len(w[0]) == C and len(w[0][0][0]) == K
    Ho = (H + 2 * padding - K) // stride + 1
    Wo = (W + 2 * padding - K) // stride + 1
    out = []
    for n in range(N):
        per_o = []
        for o in range(O):
            rows = []
            for oy in range(Ho):
                row = []
                for ox in range(Wo):
                    acc = b[o]
                    for i in range(C):
                        for kh in range(K):
                            iy = oy * stride + kh - padding
                            for kw in range(K):
                                ix = ox * stride + kw - padding
                                if 0 <= iy < H and 0 <= ix < W:
                                    v = x[n][i][iy][ix]
                                else:
                                    v = 0  # padding reads 0
                                acc += v * w[o][i][kh][kw]
                    row.append(acc)
                rows.append(row)
            per_o.append(rows)
        out.append(per_o)
    return out


def requant_one(acc: int, M: int, S: int, relu: bool) -> int:
    """The contract's requantization of one accumulator, in Python ints."""
    y = (int(acc) * int(M) + ((1 << (int(S) - 1)) if S > 0 else 0)) >> int(S)
    if relu:
        y = max(y, 0)
    return min(max(y, INT8_MIN), INT8_MAX)


def requant(acc, M, S, relu: bool) -> list:
    """Per output channel (axis 1) requantization of nested (N, O, H, W) accumulators."""
    acc = to_list(acc)
    M, S = to_list(M), to_list(S)
    return [[[[requant_one(v, M[o], S[o], relu) for v in row] for row in ch]
             for o, ch in enumerate(img)] for img in acc]


def maxpool2x2(x) -> list:
    """2x2 / stride 2 max-pool, floor on odd sizes (the last odd row/column is dropped)."""
    x = to_list(x)
    out = []
    for img in x:
        chans = []
        for ch in img:
            H, W = len(ch), len(ch[0])
            chans.append([[max(ch[2 * y][2 * xx], ch[2 * y][2 * xx + 1],
                               ch[2 * y + 1][2 * xx], ch[2 * y + 1][2 * xx + 1])
                           for xx in range(W // 2)] for y in range(H // 2)])
        out.append(chans)
    return out


def run_network(meta: dict, arrays: dict, images: np.ndarray, groups) -> tuple[list, np.ndarray]:
    """Integer inference straight from an export's raw arrays (as np.load returns them) and its
    JSON metadata: (per conv: int64 activations after pool, int64 logits (N, classes)).

    ``groups``: active group count per convolution. A conv reads its producer's active channels;
    the classifier reads the last conv's active channels, with the per-width head for that count
    (``classifier.k<k>``) or the first channels of the shared one."""
    G = int(meta["groups"])
    shift = int(meta["input"]["shift"])
    x = [[[[int(p) >> shift for p in row] for row in ch] for ch in img] for img in to_list(images)]
    acts = []
    specs = meta["layers"]
    for i, spec in enumerate(specs[:-1]):
        name = spec["name"]
        cout = groups[i] * int(spec["out_channels"]) // G
        cin = len(x[0])
        w = arrays[f"{name}.weight"][:cout, :cin]
        acc = conv_acc(x, w, arrays[f"{name}.bias"][:cout], spec["stride"], spec["padding"])
        x = requant(acc, arrays[f"{name}.M"][:cout], arrays[f"{name}.S"][:cout], bool(spec["relu"]))
        if spec["pool"]:
            x = maxpool2x2(x)
        acts.append(to_array(x))
    cls = specs[-1]
    cin = len(x[0])
    prefix = f"{cls['name']}.k{groups[-1]}" if meta["head"] == "per_width" else cls["name"]
    w = arrays[f"{prefix}.weight"][:, :cin]
    acc = conv_acc(x, w, arrays[f"{prefix}.bias"], cls["stride"], cls["padding"])
    logits = to_array(acc).reshape(len(acc), -1)
    return acts, logits
