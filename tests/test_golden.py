"""model.golden (the arithmetic contract) against deliberately naive Python-int references."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import naive_ref as naive
from model import golden

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# --------------------------------------------------------------------------------------------
# conv -> requantize -> [pool] on random small layers

# (seed, N, C, O, H, W, K, stride, padding, relu, pool)
LAYER_CASES = [
    (101, 2, 1, 3, 7, 7, 1, 1, 0, True, False),
    (102, 2, 3, 5, 9, 9, 3, 1, 1, True, True),
    (103, 2, 5, 3, 8, 10, 3, 2, 0, False, False),
    (104, 2, 3, 1, 11, 11, 5, 1, 2, True, True),
    (105, 2, 1, 5, 11, 9, 5, 2, 1, False, True),
    (106, 2, 5, 5, 9, 9, 7, 1, 3, True, False),
    (107, 2, 3, 3, 11, 11, 7, 2, 0, False, False),
    (108, 2, 5, 3, 7, 7, 3, 2, 1, True, False),
    (109, 2, 1, 1, 10, 10, 7, 1, 2, True, True),
    (110, 2, 3, 5, 7, 11, 1, 2, 0, False, True),
    (111, 2, 5, 3, 10, 8, 5, 1, 0, False, True),
    (112, 2, 3, 3, 9, 11, 3, 1, 0, True, True),
    (113, 2, 1, 3, 11, 11, 7, 2, 3, True, False),
    (114, 2, 5, 5, 7, 7, 5, 2, 2, False, False),
]


def _case_id(c):
    seed, N, C, O, H, W, K, s, p, relu, pool = c
    return f"s{seed}-C{C}O{O}-{H}x{W}-K{K}s{s}p{p}-{'relu' if relu else 'lin'}{'-pool' if pool else ''}"


@pytest.mark.parametrize("case", LAYER_CASES, ids=[_case_id(c) for c in LAYER_CASES])
def test_layer_matches_naive_loops(case):
    seed, N, C, O, H, W, K, stride, padding, relu, pool = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(N, C, H, W), dtype=np.int8)
    w = rng.integers(-128, 128, size=(O, C, K, K), dtype=np.int8)
    bmax = 64 * 128 * int(np.sqrt(C * K * K)) + 1  # about the accumulators' spread
    b = np.where(rng.random(O) < 0.75, rng.integers(-bmax, bmax, size=O), 0).astype(np.int32)

    acc = golden.conv_acc(x, w, b, stride, padding)
    ref_acc = naive.conv_acc(x, w, b, stride, padding)
    assert acc.dtype == np.int32, f"seed {seed}"
    assert acc.shape == (N, O, (H + 2 * padding - K) // stride + 1, (W + 2 * padding - K) // stride + 1), f"seed {seed}"
    assert np.array_equal(acc, naive.to_array(ref_acc)), f"conv_acc differs from the naive loops (seed {seed})"

    # Per-channel M in [1, 65535]; S uniform in [0, 47] for some channels, and for the others
    # chosen (from the naive accumulators) so that outputs land inside int8, to exercise rounding.
    M = rng.integers(1, 1 << 16, size=O)
    S = rng.integers(0, 48, size=O)
    for o in range(0, O, 2):
        peak = max(abs(v) for img in ref_acc for row in img[o] for v in row)
        S[o] = min(max((int(M[o]) * peak).bit_length() - 7 + int(rng.integers(-2, 3)), 0), 47)
    y = golden.requantize(acc, M[:, None, None], S[:, None, None], relu)
    ref_y = naive.requant(ref_acc, M, S, relu)
    assert y.dtype == np.int8, f"seed {seed}"
    assert np.array_equal(y, naive.to_array(ref_y)), f"requantize differs (seed {seed}, M={M}, S={S})"
    lo = 0 if relu else -128
    assert np.any((y > lo) & (y < 127)), f"degenerate test case: every output saturated (seed {seed})"

    if pool:
        p = golden.maxpool2x2(y)
        assert p.dtype == np.int8, f"seed {seed}"
        assert np.array_equal(p, naive.to_array(naive.maxpool2x2(ref_y))), f"maxpool differs (seed {seed})"


# --------------------------------------------------------------------------------------------
# conv_acc exactness: float32 below 2**24, float64 above, checked against an int64 reference


def _int64_conv(x, w, b, stride, padding):
    """int64 reference: one einsum per kernel offset over the zero-padded input."""
    N, C, H, W = x.shape
    O, _, K, _ = w.shape
    Ho, Wo = (H + 2 * padding - K) // stride + 1, (W + 2 * padding - K) // stride + 1
    xp = np.zeros((N, C, H + 2 * padding, W + 2 * padding), np.int64)
    xp[:, :, padding:padding + H, padding:padding + W] = x
    acc = np.zeros((N, O, Ho, Wo), np.int64) + np.asarray(b, np.int64)[None, :, None, None]
    for kh in range(K):
        for kw in range(K):
            patch = xp[:, :, kh:kh + stride * (Ho - 1) + 1:stride, kw:kw + stride * (Wo - 1) + 1:stride]
            acc += np.einsum("nchw,oc->nohw", patch, w[:, :, kh, kw].astype(np.int64))
    return acc


@pytest.mark.parametrize("C,seed", [(114, 21), (128, 22), (256, 23)])
def test_conv_acc_exact_near_and_above_float32_limit(C, seed):
    """114 channels x 3x3 x 128 x 127 stays just below 2**24 (float32 path); 128 and 256 channels
    exceed it (float64 path). Extreme values make partial sums odd and large."""
    rng = np.random.default_rng(seed)
    K, stride, padding = 3, 1, 1
    x = rng.choice(np.array([-128, 127, -127, 1], np.int8), size=(2, C, 5, 5))
    w = rng.choice(np.array([-127, 127, -128, 3], np.int8), size=(3, C, K, K))
    b = rng.integers(-1000, 1000, size=3).astype(np.int32)
    bound = 128 * int(np.abs(w.astype(np.int64)).reshape(3, -1).sum(axis=1).max())
    acc = golden.conv_acc(x, w, b, stride, padding)
    ref = _int64_conv(x, w, b, stride, padding)
    assert np.array_equal(acc, ref), f"C={C} (bound {bound}, 2**24={1 << 24}) seed {seed}"
    # Every product large, positive and often odd: partial sums climb past 2**24 (for C >= 128)
    # with low-order bits set, which float32 would round away.
    x2 = rng.choice(np.array([-128, -127], np.int8), size=x.shape)
    w2 = rng.choice(np.array([-127, -125], np.int8), size=w.shape)
    acc2 = golden.conv_acc(x2, w2, b, stride, padding)
    ref2 = _int64_conv(x2, w2, b, stride, padding)
    assert np.array_equal(acc2, ref2), f"C={C} seed {seed}"
    assert (ref2 % 2).any(), "odd sums expected"
    x2 = np.full_like(x, -128)
    # Interior pixel of an all-(-127) kernel, in Python ints: 128*127*C*9 + b.
    w3 = np.full_like(w, -127)
    acc3 = golden.conv_acc(x2, w3, b, stride, padding)
    assert [int(v) for v in acc3[0, :, 2, 2]] == [128 * 127 * C * K * K + int(bb) for bb in b], f"C={C}"


def test_conv_acc_refuses_int32_overflow():
    # 2048 channels x 9x9 x 128 x 128 = 2.7e9 > INT32_MAX: out of the contract's scope.
    x = np.full((1, 2048, 9, 9), -128, np.int8)
    w = np.full((1, 2048, 9, 9), -128, np.int8)
    with pytest.raises(OverflowError):
        golden.conv_acc(x, w, np.zeros(1, np.int32), 1, 0)
    # The bias alone pushes a 1x1 conv past either end.
    one = np.ones((1, 1, 1, 1), np.int8)
    with pytest.raises(OverflowError):
        golden.conv_acc(one, one, np.array([INT32_MAX], np.int32), 1, 0)
    with pytest.raises(OverflowError):
        golden.conv_acc(one, -one, np.array([INT32_MIN], np.int32), 1, 0)
    # ... while exactly INT32_MAX / INT32_MIN are fine.
    assert int(golden.conv_acc(one, 0 * one, np.array([INT32_MAX], np.int32), 1, 0)[0, 0, 0, 0]) == INT32_MAX
    assert int(golden.conv_acc(one, -one, np.array([INT32_MIN + 1], np.int32), 1, 0)[0, 0, 0, 0]) == INT32_MIN


def test_conv_acc_rejects_non_int8_and_bad_shapes():
    x = np.zeros((1, 2, 5, 5), np.int8)
    w = np.zeros((3, 2, 3, 3), np.int8)
    b = np.zeros(3, np.int32)
    with pytest.raises(TypeError):
        golden.conv_acc(x.astype(np.int16), w, b, 1, 1)
    with pytest.raises(TypeError):
        golden.conv_acc(x, w.astype(np.float32), b, 1, 1)
    with pytest.raises(ValueError):
        golden.conv_acc(x, np.zeros((3, 4, 3, 3), np.int8), b, 1, 1)  # channel mismatch
    with pytest.raises(ValueError):
        golden.conv_acc(np.zeros((1, 2, 2, 2), np.int8), w, b, 1, 0)  # kernel larger than input


# --------------------------------------------------------------------------------------------
# requantization corners


REQ_CORNERS = [
    # (acc, M, S, relu): S = 0, S = 47, M = 65535, halves, saturation, int32 extremes
    (5, 1, 0, False), (-5, 1, 0, False), (127, 1, 0, False), (128, 1, 0, False), (-129, 1, 0, False),
    (-3, 1, 1, False), (-1, 1, 1, False), (1, 1, 1, False), (3, 1, 1, False), (-2, 1, 1, False),
    (-5, 3, 2, False), (5, 3, 2, False), (-6, 1, 2, False), (6, 1, 2, False), (-7, 1, 2, False),
    (1 << 30, 32768, 46, False), (-(1 << 30), 32768, 46, False), ((1 << 30) - 1, 32768, 46, False),
    (-(1 << 30) - 1, 32768, 46, False), (-(1 << 30), 32768, 45, False), (1 << 30, 32768, 45, False),
    (INT32_MAX, 65535, 47, False), (INT32_MIN, 65535, 47, False), (INT32_MIN, 65535, 47, True),
    (INT32_MAX, 65535, 46, False), (INT32_MIN, 65535, 46, False),
    (INT32_MAX, 65535, 40, False), (INT32_MIN, 65535, 40, False),
    (INT32_MAX, 65535, 0, False), (INT32_MIN, 65535, 0, False),
    (INT32_MAX, 65535, 0, True), (INT32_MIN, 65535, 0, True),
    (INT32_MIN, 1, 24, False), (INT32_MIN, 1, 24, True), (INT32_MAX, 1, 24, False),
    (10 ** 9, 65535, 31, False), (-(10 ** 9), 65535, 31, False), (-(10 ** 9), 65535, 31, True),
    (-1, 65535, 16, False), (-1, 65535, 17, False), (-1, 65535, 47, False), (0, 65535, 47, True),
    (-300, 1, 1, True), (-300, 1, 1, False), (300, 1, 1, True), (300, 1, 1, False),
    (255, 1, 1, False), (253, 1, 1, False), (-257, 1, 1, False), (-255, 1, 1, False),
]


@pytest.mark.parametrize("acc,M,S,relu", REQ_CORNERS)
def test_requantize_corners(acc, M, S, relu):
    got = golden.requantize(np.array([acc], np.int32), M, S, relu)
    assert got.dtype == np.int8
    assert int(got[0]) == naive.requant_one(acc, M, S, relu), f"acc={acc} M={M} S={S} relu={relu}"


def test_requantize_half_rounds_up_by_hand():
    """Round half towards +inf, worked out by hand from the contract."""
    cases = {(-3, 1, 1): -1, (-1, 1, 1): 0, (1, 1, 1): 1, (3, 1, 1): 2, (-5, 1, 1): -2, (-2, 1, 2): 0,
             (-6, 1, 2): -1, (2, 1, 2): 1}
    for (acc, M, S), want in cases.items():
        assert int(golden.requantize(np.int32(acc), M, S, False)) == want, (acc, M, S)
    assert int(golden.requantize(np.int32(10 ** 6), 1, 0, False)) == 127
    assert int(golden.requantize(np.int32(-(10 ** 6)), 1, 0, False)) == -128
    assert int(golden.requantize(np.int32(-(10 ** 6)), 1, 0, True)) == 0
    assert int(golden.requantize(np.int32(10 ** 6), 1, 0, True)) == 127


@pytest.mark.parametrize("seed", [31, 32])
def test_requantize_random_vs_python_ints(seed):
    rng = np.random.default_rng(seed)
    n = 4000
    acc = rng.integers(INT32_MIN, INT32_MAX, size=n, endpoint=True)
    acc[: n // 2] >>= rng.integers(0, 31, size=n // 2)  # many magnitudes
    M = rng.integers(1, 1 << 16, size=n)
    S = rng.integers(0, 48, size=n)
    relu = bool(seed % 2)
    got = golden.requantize(acc.astype(np.int32), M, S, relu)
    want = [naive.requant_one(a, m, s, relu) for a, m, s in zip(acc.tolist(), M.tolist(), S.tolist())]
    assert np.array_equal(got, np.array(want)), f"seed {seed}"


def test_requantize_broadcasts_per_channel():
    rng = np.random.default_rng(41)
    acc = rng.integers(-(1 << 20), 1 << 20, size=(2, 3, 4, 5)).astype(np.int32)
    M = rng.integers(1, 1 << 16, size=3)
    S = rng.integers(14, 30, size=3)
    got = golden.requantize(acc, M[:, None, None], S[:, None, None], False)
    assert np.array_equal(got, naive.to_array(naive.requant(acc, M, S, False))), "seed 41"


@pytest.mark.parametrize("M,S", [(0, 5), (65536, 5), (-1, 5), (1, -1), (1, 48), (65536, 48)])
def test_requantize_rejects_bad_M_S(M, S):
    with pytest.raises(ValueError):
        golden.requantize(np.array([1, 2], np.int32), M, S, False)


@pytest.mark.parametrize("acc", [INT32_MAX + 1, INT32_MIN - 1, 1 << 40, -(1 << 40)])
def test_requantize_rejects_acc_outside_int32(acc):
    with pytest.raises(OverflowError):
        golden.requantize(np.array([0, acc], np.int64), 1, 0, False)


# --------------------------------------------------------------------------------------------
# max-pool


@pytest.mark.parametrize("H,W", [(5, 7), (7, 5), (3, 3), (2, 9), (6, 4)])
def test_maxpool_floor_on_odd_sizes(H, W):
    seed = 50 + H * 10 + W
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(2, 3, H, W), dtype=np.int8)
    got = golden.maxpool2x2(x)
    assert got.shape == (2, 3, H // 2, W // 2), f"seed {seed}"
    assert got.dtype == np.int8
    assert np.array_equal(got, naive.to_array(naive.maxpool2x2(x))), f"seed {seed}"
    # The dropped last row/column never matters: make it the maximum and the result is the same.
    x2 = x.copy()
    if H % 2:
        x2[:, :, -1, :] = 127
    if W % 2:
        x2[:, :, :, -1] = 127
    assert np.array_equal(golden.maxpool2x2(x2), got), f"seed {seed}"


# --------------------------------------------------------------------------------------------
# widths and per-layer group lists


@pytest.mark.parametrize("width", [0.25, 0.5, 0.75, 1, 1.0, "0.5", "1", "0.25", "3/4", np.float64(0.75)])
def test_width_groups_valid(width):
    want = Fraction(str(width)) * 4
    assert want.denominator == 1
    assert golden.width_groups(width, 4) == int(want)


def test_width_groups_thirds():
    for k in (1, 2, 3):
        assert golden.width_groups(k / 3, 3) == k


@pytest.mark.parametrize("width", [0, 0.3, 1.5, "abc", -0.25, "", None, float("nan"), float("inf"), 1.25, "0"])
def test_width_groups_invalid(width):
    with pytest.raises(golden.WidthError):
        golden.width_groups(width, 4)


def test_resolve_groups(tiny_pw):
    ex = tiny_pw.export  # two split convolutions, G = 4
    assert golden.resolve_groups(ex, width=0.5) == (2, 2)
    assert golden.resolve_groups(ex, width="1") == (4, 4)
    assert golden.resolve_groups(ex, groups=[1, 3]) == (1, 3)
    assert golden.resolve_groups(ex, groups=(np.int64(4), 2)) == (4, 2)


@pytest.mark.parametrize("kwargs", [
    dict(groups=[1]), dict(groups=[1, 2, 3]), dict(groups=[]), dict(groups=[0, 1]), dict(groups=[1, 5]),
    dict(groups=[1.0, 2]), dict(groups=[1.5, 2]), dict(groups=["1", "2"]), dict(groups=[True, 2]),
    dict(groups=[-1, 2]), dict(width=0.5, groups=[2, 2]), dict(), dict(width=0.3), dict(width=0),
])
def test_resolve_groups_invalid(tiny_pw, kwargs):
    with pytest.raises(golden.WidthError):
        golden.resolve_groups(tiny_pw.export, **kwargs)


def test_run_refuses_bad_width(tiny_pw):
    with pytest.raises(golden.WidthError):
        golden.run(tiny_pw.export, tiny_pw.images, width=0.3)
    with pytest.raises(golden.WidthError):
        golden.run(tiny_pw.export, tiny_pw.images, groups=(1, 2, 3))
