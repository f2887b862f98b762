"""model.quantize.export / model.export: the int8 export of a small untrained network.

The network (tests/conftest.py: tiny_config) has random weights and BatchNorm statistics; the
checks are structural (format, dtypes, ranges, block lower-triangular weights), numerical (the
quantized values against an independent float64 computation from the float network), and
end-to-end (golden.run against the naive loops of tests/naive_ref.py).
"""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

import naive_ref as naive
from model import golden
from model.export import META_KEY, ExportError, load_export, save_export
from model.quantize import INPUT_SHIFT, quantize_multiplier

WIDTHS = (0.25, 0.5, 0.75, 1)
NONUNIFORM = [(1, 3), (3, 1), (2, 4), (4, 2)]


def _conv_names(case):
    return [c.name for c in case.cfg.convs]


def _expected_array_names(case):
    G = case.cfg.groups
    names = [f"{c}.{f}" for c in _conv_names(case) for f in ("weight", "bias", "M", "S")]
    heads = [f"classifier.k{k}" for k in range(1, G + 1)] if case.head == "per_width" else ["classifier"]
    return sorted(names + [f"{h}.{f}" for h in heads for f in ("weight", "bias", "M", "S")])


# --------------------------------------------------------------------------------------------
# format, round trip, dtypes, ranges


def test_round_trip_and_meta(tiny):
    ex, cfg = tiny.export, tiny.cfg
    assert sorted(tiny.arrays) == _expected_array_names(tiny), f"seed {tiny.seed}"
    reloaded = load_export(tiny.path)
    for i, name in enumerate(_conv_names(tiny)):
        for f in ("weight", "bias", "M", "S"):
            assert np.array_equal(getattr(reloaded.convs[i], f), tiny.arrays[f"{name}.{f}"]), (name, f)
            assert np.array_equal(getattr(ex.convs[i], f), tiny.arrays[f"{name}.{f}"]), (name, f)
    G = cfg.groups
    gs_last = cfg.convs[-1].out_channels // G
    for k in range(1, G + 1):
        head = reloaded.classifier(k)
        prefix = f"classifier.k{k}" if tiny.head == "per_width" else "classifier"
        assert np.array_equal(head.weight, tiny.arrays[f"{prefix}.weight"][:, :k * gs_last]), k
        assert np.array_equal(head.bias, tiny.arrays[f"{prefix}.bias"]), k
        assert head.weight.shape == (cfg.num_classes, k * gs_last, 3, 3), k

    meta = reloaded.meta
    assert meta == tiny.meta
    assert meta["format"] == "chanscale-export" and meta["version"] == 3
    assert "config" not in meta, "one layer list: `layers`"
    assert meta["groups"] == G == reloaded.groups
    assert meta["head"] == tiny.head
    assert meta["connectivity"] == "block_lower_triangular"
    assert meta["input"]["shift"] == INPUT_SHIFT == reloaded.input_shift
    assert meta["input"]["channels"] == 1 and meta["input"]["size"] == 12
    assert math.isclose(meta["input"]["scale"], 1 / (255 >> INPUT_SHIFT), rel_tol=1e-12)
    assert meta["calibration"]["images"] == len(tiny.calib)
    assert len(meta["digest"]) == 64
    # Layer geometry, from the config by hand: 12 -> conv (pad 1) 12 -> pool 6 -> conv s2 3.
    want = [("c1", "conv", 8, 3, 1, 1, True, True, 12), ("c2", "conv", 8, 3, 2, 1, True, False, 6),
            ("classifier", "classifier", 10, 3, 1, 0, False, False, 3)]
    got = [(L["name"], L["kind"], L["out_channels"], L["kernel"], L["stride"], L["padding"], L["relu"],
            L["pool"], L["in_size"]) for L in meta["layers"]]
    assert got == want
    assert [(L.in_channels, L.out_channels, L.conv_size, L.out_size) for L in reloaded.convs] == \
        [(1, 8, 12, 6), (8, 8, 3, 3)]
    # Active channels per layer for a non-uniform group list (group size 2 everywhere).
    assert [(c_in, c_out) for _, c_in, c_out in reloaded.layers((1, 3))] == [(1, 2), (2, 6), (6, 10)]


def test_dtypes_and_ranges(tiny):
    for name, a in tiny.arrays.items():
        field = name.rsplit(".", 1)[1]
        want = {"weight": np.int8, "bias": np.int32, "M": np.int32, "S": np.int32}[field]
        assert a.dtype == want, name
        if field == "M":
            assert a.min() >= 1 and a.max() <= 65535, name
        if field == "S":
            assert a.min() >= 0 and a.max() <= 47, name
        if field in ("M", "S"):  # 16-bit M normalised to [2**15, 2**16) unless S saturated at 47
            M, S = tiny.arrays[name[:-1] + "M"], tiny.arrays[name[:-1] + "S"]
            assert np.all((M >= 1 << 15) | (S == 47)), name
        if field == "weight":
            assert a.min() >= -127, f"{name}: symmetric int8 weights stay in [-127, 127]"


def test_weights_block_lower_triangular(tiny):
    G = tiny.cfg.groups
    first = tiny.arrays["c1.weight"]
    # First layer: dense, every output channel reads the image.
    assert np.all(np.abs(first).reshape(len(first), -1).sum(axis=1) > 0), f"seed {tiny.seed}"
    w = tiny.arrays["c2.weight"]
    O, I = w.shape[:2]
    go, gi = O // G, I // G
    for g in range(G):
        for j in range(G):
            block = w[g * go:(g + 1) * go, j * gi:(j + 1) * gi]
            if j > g:
                assert not block.any(), f"output group {g} reads input group {j} (seed {tiny.seed})"
            else:
                assert block.any(), f"allowed block ({g}, {j}) is all zero: test net degenerate (seed {tiny.seed})"


def test_quantized_values_match_float_network(tiny):
    """Weights, bias and (M, S) against a float64 recomputation from the float network:
    BatchNorm folded, input scales folded per input channel, per-output-channel weight scales."""
    net, meta, G = tiny.net, tiny.meta, tiny.cfg.groups
    s_in = np.full(1, 1.0 / (255 >> INPUT_SHIFT))
    for i, spec in enumerate(tiny.cfg.convs):
        bn = net.bns[i]
        gamma, beta = bn.weight.detach().double().numpy(), bn.bias.detach().double().numpy()
        mean, var = bn.running_mean.double().numpy(), bn.running_var.double().numpy()
        scale = gamma / np.sqrt(var + bn.eps)
        w = net.weights[i].detach().double().numpy() * net.mask(i).double().numpy()
        w_eff = w * scale[:, None, None, None] * s_in[None, :, None, None]
        b_f = beta - mean * scale
        s_w = np.abs(w_eff).reshape(len(w_eff), -1).max(axis=1) / 127
        rec_sw = np.array(meta["scales"]["weight"][i])
        np.testing.assert_allclose(rec_sw, s_w, rtol=1e-5, err_msg=f"{spec.name} weight scales")
        wq = tiny.arrays[f"{spec.name}.weight"].astype(np.float64)
        assert np.all(np.abs(wq - w_eff / rec_sw[:, None, None, None]) <= 0.5 + 1e-3), spec.name
        bq = tiny.arrays[f"{spec.name}.bias"].astype(np.float64)
        assert np.all(np.abs(bq - b_f / rec_sw) <= 0.5 + 1e-2), spec.name
        s_out = np.repeat(np.array(meta["scales"]["act"][i]), spec.out_channels // G)
        assert np.all(s_out > 0), spec.name
        M = tiny.arrays[f"{spec.name}.M"].astype(np.float64)
        S = tiny.arrays[f"{spec.name}.S"].astype(np.float64)
        np.testing.assert_allclose(M * 2.0 ** -S, rec_sw / s_out, rtol=2.0 ** -15, err_msg=spec.name)
        s_in = s_out
    # Classifier: one weight scale per head (per tensor); M/S encode that scale.
    heads = range(1, G + 1) if tiny.head == "per_width" else [G]
    for n, k in enumerate(heads):
        w, b = (t.detach().double().numpy() for t in net.head(k))
        w_eff = w * s_in[None, :w.shape[1], None, None]
        s_w = np.abs(w_eff).max() / 127
        rec = np.array(meta["scales"]["weight"][len(tiny.cfg.convs) + n])
        np.testing.assert_allclose(rec, s_w, rtol=1e-5, err_msg=f"head {k}")
        prefix = f"classifier.k{k}" if tiny.head == "per_width" else "classifier"
        assert np.all(np.abs(tiny.arrays[f"{prefix}.weight"] - w_eff / rec[0]) <= 0.5 + 1e-3), k
        assert np.all(np.abs(tiny.arrays[f"{prefix}.bias"] - b / rec[0]) <= 0.5 + 1e-2), k
        M, S = int(tiny.arrays[f"{prefix}.M"][0]), int(tiny.arrays[f"{prefix}.S"][0])
        assert abs(math.ldexp(M, -S) - rec[0]) <= rec[0] * 2.0 ** -15, k


def test_golden_run_matches_naive_and_is_triangular(tiny):
    """golden.run at every uniform width and at non-uniform group lists against the naive loops;
    a narrower network's activations are the first channels of the wider one's."""
    ex, images, G = tiny.export, tiny.images, tiny.cfg.groups
    full = golden.run(ex, images, width=1)
    gs = [c.out_channels // G for c in tiny.cfg.convs]
    configs = [dict(width=w) for w in WIDTHS] + [dict(groups=g) for g in NONUNIFORM]
    seen_logits = []
    for kw in configs:
        res = golden.run(ex, images, **kw)
        groups = res.groups
        acts, logits = naive.run_network(tiny.meta, tiny.arrays, images, groups)
        for i, (a, ref) in enumerate(zip(res.acts, acts)):
            assert a.dtype == np.int8, (kw, i)
            assert np.array_equal(a, ref), f"layer {i} at {kw} differs from the naive loops (seed {tiny.seed})"
        assert res.logits.dtype == np.int32
        assert np.array_equal(res.logits, logits), f"logits at {kw} differ from the naive loops (seed {tiny.seed})"
        # Channel groups whose whole input cone is active compute what the full network computes.
        for i, a in enumerate(res.acts):
            assert a.shape[1] == groups[i] * gs[i], (kw, i)
            k = min(groups[:i + 1])
            assert np.array_equal(a[:, :k * gs[i]], full.acts[i][:, :k * gs[i]]), \
                f"layer {i} groups 0..{k - 1} at {kw} differ from full width (seed {tiny.seed})"
        assert np.array_equal(res.predictions, res.logits.argmax(axis=1))
        seen_logits.append(res.logits)
    assert any(not np.array_equal(seen_logits[0], lg) for lg in seen_logits[1:]), "every width computes the same"
    # Batching does not change the result.
    assert np.array_equal(golden.run(ex, images, width=0.5, batch=1).logits,
                          golden.run(ex, images, width=0.5).logits)


@pytest.mark.parametrize("groups", [(1, 1), (2, 2), (3, 3), (4, 4), (1, 3), (3, 1), (2, 4), (4, 2)])
def test_macs_and_param_bytes_by_counting(tiny, groups):
    """MACs per image and parameter bytes against a count over (output, input) channel pairs:
    block lower-triangular pairs for the inner convolution, all pairs for the first one and the
    classifier; per output channel 4 + 2 + 1 bytes of bias, M and S."""
    ex, cfg, G = tiny.export, tiny.cfg, tiny.cfg.groups
    conv_out = [12, 3]  # 12x12 (pad 1) and 6x6 -> 3x3 (stride 2); the classifier's output is 1x1
    macs, params, cin = [], 0, 1
    for i, spec in enumerate(cfg.convs):
        cout = groups[i] * spec.out_channels // G
        gs_o = spec.out_channels // G
        gs_i = (cfg.convs[i - 1].out_channels // G) if i else None
        pairs = sum(1 for o in range(cout) for j in range(cin) if i == 0 or j // gs_i <= o // gs_o)
        macs.append(pairs * spec.kernel ** 2 * conv_out[i] ** 2)
        params += pairs * spec.kernel ** 2 + cout * 7
        cin = cout
    K = cfg.classifier_kernel
    macs.append(cin * cfg.num_classes * K * K)
    params += cin * cfg.num_classes * K * K + cfg.num_classes * 7
    assert ex.macs(groups) == macs, groups
    assert ex.param_bytes(groups) == params, groups
    # The MAC count equals the number of weight taps that can be nonzero, times output pixels.
    w = tiny.arrays["c2.weight"][:groups[1] * 2, :groups[0] * 2]
    assert np.count_nonzero(w) <= macs[1] // 9


def test_golden_run_rejects_wrong_image_shape(tiny_pw):
    with pytest.raises(ValueError):
        golden.run(tiny_pw.export, np.zeros((2, 1, 28, 28), np.uint8), width=1)
    with pytest.raises(TypeError):
        golden.run(tiny_pw.export, tiny_pw.images.astype(np.int16), width=1)


# --------------------------------------------------------------------------------------------
# bad files: a clear ExportError, nothing written


def _listing(folder):
    return sorted((p.name, p.stat().st_size) for p in folder.iterdir())


def _copy(case, tmp_path):
    dst = tmp_path / "e.npz"
    shutil.copyfile(case.path, dst)
    return dst


def _rewrite(path, arrays, meta_bytes):
    """Rewrite an export with np.savez (uncompressed), keeping the original __meta__ record."""
    with open(path, "wb") as f:
        np.savez(f, **arrays, **{META_KEY: meta_bytes})


def _raw(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, arrays.pop(META_KEY)


def _assert_refused(path, match=None):
    before = _listing(path.parent)
    with pytest.raises(ExportError, match=match):
        load_export(path)
    assert _listing(path.parent) == before, "loading a bad export wrote something"


def test_refuses_missing_file(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        load_export(tmp_path / "nope.npz")
    assert list(tmp_path.iterdir()) == []


def test_refuses_truncated_file(tiny_pw, tmp_path):
    p = _copy(tiny_pw, tmp_path)
    data = p.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 0):
        p.write_bytes(data[:cut])
        _assert_refused(p)


def test_refuses_non_zip(tmp_path):
    p = tmp_path / "e.npz"
    p.write_text("this is not a zip archive\n" * 10)
    _assert_refused(p)
    p.write_bytes(bytes(range(256)) * 4)
    _assert_refused(p)


def test_refuses_plain_npy_file(tmp_path):
    """A single .npy array (not a zip) under an export's name must be refused like any other
    non-export, with ExportError."""
    p = tmp_path / "e.npz"
    with open(p, "wb") as f:
        np.save(f, np.arange(10, dtype=np.int32))
    _assert_refused(p)


def test_refuses_missing_array(tiny, tmp_path):
    p = _copy(tiny, tmp_path)
    arrays, meta = _raw(p)
    del arrays["c2.bias"]
    _rewrite(p, arrays, meta)
    _assert_refused(p, match="c2.bias")


def test_refuses_missing_meta(tiny_pw, tmp_path):
    p = _copy(tiny_pw, tmp_path)
    arrays, _ = _raw(p)
    with open(p, "wb") as f:
        np.savez(f, **arrays)
    _assert_refused(p)


@pytest.mark.parametrize("key,dtype", [("c1.M", np.int64), ("c2.weight", np.int16), ("c1.bias", np.int64),
                                       ("c2.S", np.uint8)])
def test_refuses_wrong_dtype(tiny_pw, tmp_path, key, dtype):
    p = _copy(tiny_pw, tmp_path)
    arrays, meta = _raw(p)
    arrays[key] = arrays[key].astype(dtype)
    _rewrite(p, arrays, meta)
    _assert_refused(p, match="dtype")


def test_refuses_tampered_array(tiny, tmp_path):
    p = _copy(tiny, tmp_path)
    arrays, meta = _raw(p)
    w = arrays["c2.weight"].copy()
    w[0, 0, 0, 0] = 1 if w[0, 0, 0, 0] != 1 else 2
    arrays["c2.weight"] = w
    _rewrite(p, arrays, meta)
    _assert_refused(p, match="digest")


def test_refuses_swapped_arrays(tiny_pw, tmp_path):
    p = _copy(tiny_pw, tmp_path)
    arrays, meta = _raw(p)
    arrays["c1.M"], arrays["c2.M"] = arrays["c2.M"], arrays["c1.M"]
    assert not np.array_equal(arrays["c1.M"], arrays["c2.M"])
    _rewrite(p, arrays, meta)
    _assert_refused(p, match="digest")


def test_refuses_unexpected_array(tiny_pw, tmp_path):
    p = _copy(tiny_pw, tmp_path)
    arrays, meta = _raw(p)
    arrays["c3.weight"] = np.zeros((1, 1, 1, 1), np.int8)
    _rewrite(p, arrays, meta)
    _assert_refused(p)


@pytest.mark.parametrize("key", ["c1.weight", "extra"])
def test_refuses_pickled_object_arrays(tiny_pw, tmp_path, key):
    p = _copy(tiny_pw, tmp_path)
    arrays, meta = _raw(p)
    arrays[key] = np.array([{"x": 1}, None], dtype=object)
    _rewrite(p, arrays, meta)
    _assert_refused(p)


def test_refuses_bad_metadata(tiny_pw, tmp_path):
    p = _copy(tiny_pw, tmp_path)
    arrays, meta = _raw(p)
    _rewrite(p, arrays, np.frombuffer(b"{not json", np.uint8))
    _assert_refused(p)
    m = json.loads(meta.tobytes().decode())
    m["format"] = "something-else"
    _rewrite(p, arrays, np.frombuffer(json.dumps(m).encode(), np.uint8))
    _assert_refused(p)
    m = json.loads(meta.tobytes().decode())
    del m["layers"]
    _rewrite(p, arrays, np.frombuffer(json.dumps(m).encode(), np.uint8))
    _assert_refused(p)


def _mangle(m, how):
    if how == "no layers key":
        del m["layers"]
    elif how == "empty layer list":
        m["layers"] = []
    elif how == "groups 0":
        m["groups"] = 0
    elif how == "groups not a number":
        m["groups"] = "four"
    elif how == "input null":
        m["input"] = None
    elif how == "kernel as string":
        m["layers"][0]["kernel"] = "3"
    elif how == "unknown head":
        m["head"] = "bogus"
    elif how == "meta is a list":
        return [m]
    return m


@pytest.mark.parametrize("how", ["no layers key", "empty layer list", "groups 0", "groups not a number",
                                 "input null", "kernel as string", "unknown head", "meta is a list"])
def test_refuses_mangled_metadata(tiny_pw, tmp_path, how):
    """An inconsistent export is refused with ExportError, whatever part of the metadata is off."""
    p = _copy(tiny_pw, tmp_path)
    arrays, meta = _raw(p)
    m = _mangle(json.loads(meta.tobytes().decode()), how)
    _rewrite(p, arrays, np.frombuffer(json.dumps(m).encode(), np.uint8))
    _assert_refused(p)


@pytest.mark.parametrize("layer,field,value", [(0, "relu", False), (1, "stride", 1), (0, "pool", False),
                                               (1, "padding", 0)])
def test_refuses_tampered_layer_metadata(tiny_pw, tmp_path, layer, field, value):
    """The layer flags decide what the integer network computes; a file whose flags were edited
    is tampered with and must not load as if it were the exported network."""
    p = _copy(tiny_pw, tmp_path)
    arrays, meta = _raw(p)
    m = json.loads(meta.tobytes().decode())
    assert m["layers"][layer][field] != value
    m["layers"][layer][field] = value
    _rewrite(p, arrays, np.frombuffer(json.dumps(m).encode(), np.uint8))
    _assert_refused(p)


def test_export_file_permissions_follow_umask(tiny_pw, tmp_path):
    """An export is an ordinary output file: readable like the float network next to it
    (mode 0o666 & ~umask), not private to its owner."""
    import os
    umask = os.umask(0)
    os.umask(umask)
    meta = {k: v for k, v in tiny_pw.meta.items() if k not in ("format", "version", "digest")}
    p = save_export(tmp_path / "e.npz", meta, tiny_pw.arrays)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(1))
    assert oct(p.stat().st_mode & 0o777) == oct(plain.stat().st_mode & 0o777) == oct(0o666 & ~umask)


def test_save_export_wrong_dtype_writes_nothing(tiny_pw, tmp_path):
    arrays = dict(tiny_pw.arrays)
    arrays["c1.weight"] = arrays["c1.weight"].astype(np.int32)
    meta = {k: v for k, v in tiny_pw.meta.items() if k not in ("format", "version", "digest")}
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError, match="dtype"):
        save_export(out / "e.npz", meta, arrays)
    assert list(out.iterdir()) == [], "save_export left a file behind"


def test_save_export_round_trip(tiny_pw, tmp_path):
    meta = {k: v for k, v in tiny_pw.meta.items() if k not in ("format", "version", "digest")}
    p = save_export(tmp_path / "sub" / "e.npz", meta, tiny_pw.arrays)
    assert [q.name for q in p.parent.iterdir()] == ["e.npz"], "temporary files left behind"
    arrays, _ = _raw(p)
    assert sorted(arrays) == sorted(tiny_pw.arrays)
    for k in arrays:
        assert arrays[k].dtype == tiny_pw.arrays[k].dtype and np.array_equal(arrays[k], tiny_pw.arrays[k]), k
    assert load_export(p).meta == tiny_pw.meta


def test_save_export_unreadable_leaves_no_file(tiny_pw, tmp_path):
    """save_export promises 'nothing half-written' and to 'refuse to leave a file we could not read
    back'. An export that fails validation (M = 0 is outside 1..65535) must raise and leave
    neither a new file nor a damaged previous one."""
    meta = {k: v for k, v in tiny_pw.meta.items() if k not in ("format", "version", "digest")}
    bad = dict(tiny_pw.arrays)
    bad["c1.M"] = np.zeros_like(bad["c1.M"])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError):
        save_export(out / "e.npz", meta, bad)
    assert list(out.iterdir()) == [], "save_export left an export it cannot read back"
    # Over a good export: the good one must survive.
    good = save_export(out / "e.npz", meta, tiny_pw.arrays)
    with pytest.raises(ExportError):
        save_export(out / "e.npz", meta, bad)
    assert np.array_equal(load_export(good).convs[0].M, tiny_pw.arrays["c1.M"]), \
        "a failed save_export destroyed the previous export"


# --------------------------------------------------------------------------------------------
# quantize_multiplier


def test_quantize_multiplier_random():
    seed = 77
    rng = np.random.default_rng(seed)
    v = 10.0 ** rng.uniform(-9, 4, size=3000)
    v[:20] = 2.0 ** rng.integers(-28, 13, size=20)  # exact powers of two
    M, S = quantize_multiplier(v)
    assert M.dtype == np.int32 and S.dtype == np.int32 and M.shape == S.shape == v.shape
    assert M.min() >= 1 and M.max() <= 65535, f"seed {seed}"
    assert S.min() >= 0 and S.max() <= 47, f"seed {seed}"
    Mi, Si = M.astype(np.int64), S.astype(np.int64)
    approx = np.array([math.ldexp(int(m), -int(s)) for m, s in zip(Mi, Si)])
    ok = Si < 47
    rel = np.abs(approx[ok] - v[ok]) / v[ok]
    assert rel.max() <= 2.0 ** -15, f"seed {seed}: worst relative error {rel.max()} at {v[ok][rel.argmax()]}"
    assert np.array_equal(approx[:20], v[:20]), f"powers of two are exact (seed {seed})"
    # S saturated at 47 only for values too small for a 16-bit M at S <= 47, and then M is the
    # nearest integer to v * 2**47 (at least 1).
    sat = ~ok
    assert np.all(v[sat] * 2.0 ** 47 < 2 ** 15 + 0.5), f"seed {seed}"
    assert np.array_equal(Mi[sat], np.maximum(1, np.rint(v[sat] * 2.0 ** 47)).astype(np.int64)), f"seed {seed}"


@pytest.mark.parametrize("v", [2.0 ** 16, 65536.5, 1e5, 1e9, float("inf"), float("nan"), 0.0, -1.0])
def test_quantize_multiplier_rejects(v):
    with pytest.raises(ValueError):
        quantize_multiplier(np.array([1.0, v]))


def test_quantize_multiplier_tiny_clamps():
    v = [1e-20, 2.0 ** -60, 3 * 2.0 ** -48, 1e-12, 2.0 ** -33]
    M, S = quantize_multiplier(np.array(v))
    assert S.tolist() == [47] * len(v)
    assert M.tolist() == [max(1, round(x * 2.0 ** 47)) for x in v]
    # The largest representable values: M = 65535 at S = 0 exactly; 1.0 exactly.
    M, S = quantize_multiplier(np.array([65535.0, 1.0, 2.0 ** -32]))
    assert [math.ldexp(int(m), -int(s)) for m, s in zip(M, S)] == [65535.0, 1.0, 2.0 ** -32]
