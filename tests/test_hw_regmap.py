"""hw.contract.params and hw.contract.regmap: the configuration, the register map's layout rules, descriptors, docs.

Expected offsets are recomputed here from the layout rules the map declares (the numbers in
hw/contract/regmap.py's docstrings and the README), not read back from the map itself.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from hw.contract.params import ArrayConfig, parse_array
from hw.contract.regmap import (
    COUNTERS, DESC_FIELDS, DESC_WORDS, ERROR_CODES, Error, Field, Register, Window,
    counter_offset, decode_descriptor, desc_field, encode_descriptor, markdown, regmap,
)

ARRAYS = ["4x4", "8x8", "16x16"]
BUFFERS = ("IMG", "ACTA", "ACTB", "WGT", "PRM", "ACC", "LINE", "LOGIT")


# --------------------------------------------------------------------------------------------
# ArrayConfig


def test_config_defaults_and_properties():
    c = ArrayConfig()
    assert (c.rows, c.cols, c.n, c.addr_bits, c.n_desc, c.wgt_depth) == (8, 8, 8, 20, 16, 8192)


@pytest.mark.parametrize("kw,match", [
    ({"rows": 8, "cols": 4}, "R == C"),
    ({"rows": 1, "cols": 1}, "R == C"),
    ({"rows": 17, "cols": 17}, "R == C"),
    ({"img_channels": 0}, "img_channels"),
    ({"img_channels": 9}, "img_channels"),
    ({"n_desc": 0}, "n_desc"),
    ({"n_desc": 49}, "overlaps CHAN"),  # CHAN[48] would sit on the counters at 0x100
    ({"max_kernel": 16}, "MAX_KERNEL"),
    ({"max_groups": 0}, "max_groups"),
    ({"act_depth": 0}, "act_depth"),
    ({"rows": 16, "cols": 16, "wgt_depth": 100_000}, "WEIGHTS"),
    ({"rows": 8.0}, "must be an int"),
])
def test_config_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        ArrayConfig(**kw)


def test_config_round_trips_through_json():
    c = ArrayConfig(rows=4, cols=4, img_channels=3, n_desc=7)
    assert ArrayConfig.from_json(c.to_json()) == c
    assert ArrayConfig.from_dict(json.loads(c.to_json())) == c
    with pytest.raises(ValueError, match="unknown ArrayConfig fields"):
        ArrayConfig.from_dict({**c.to_dict(), "depth": 3})


def test_parse_array():
    assert parse_array("8x8") == ArrayConfig()
    assert parse_array(" 16X16 ").n == 16
    assert parse_array("4x4", n_desc=3).n_desc == 3
    for bad in ("8x4", "1x1", "17x17", "8", "x8", "8x8x8", "", None):
        with pytest.raises(ValueError, match=r"^array must be RxC with R == C in 2\.\.16, e\.g\. 8x8$"):
            parse_array(bad)
    for small in ("2x2", "3x3", "12x12"):  # the sequencer: a power of two, at least 4x4
        with pytest.raises(ValueError, match=r"power-of-two array of at least 4x4"):
            parse_array(small)


# --------------------------------------------------------------------------------------------
# Declarations


def test_window_stride_rule():
    for word_bytes, stride in [(1, 4), (3, 4), (4, 4), (5, 8), (8, 8), (9, 16), (64, 64), (80, 128)]:
        w = Window("X", 0, word_bytes, 3, "rw", "")
        assert (w.stride, w.size) == (stride, 3 * stride)
    with pytest.raises(ValueError, match="multiple of the entry stride"):
        Window("X", 0x104, 8, 4, "rw", "")


def test_field_and_register_validation():
    with pytest.raises(ValueError, match="do not fit"):
        Field("A", 30, 4, "rw")
    with pytest.raises(ValueError, match="access"):
        Field("A", 0, 4, "wo")
    with pytest.raises(ValueError, match="reset"):
        Field("A", 0, 4, "rw", reset=16)
    with pytest.raises(ValueError, match="overlaps"):
        Register("R", 0, (Field("A", 0, 4, "rw"), Field("B", 3, 2, "rw")), "")
    with pytest.raises(ValueError, match="multiple of 4"):
        Register("R", 2, (Field("A", 0, 4, "rw"),), "")
    r = Register("R", 0x40, (Field("A", 0, 8, "rw"), Field("B", 8, 8, "rw", reset=3)), "", count=4)
    assert r.reset == 0x300 and r.mask == 0xFFFF and r.offsets == [0x40, 0x44, 0x48, 0x4C]
    assert r.encode({"a": 5, "B": 1}) == 0x105 and r.decode(0x1234) == {"A": 0x34, "B": 0x12}
    with pytest.raises(IndexError):
        r.offset_of(4)


@pytest.mark.parametrize("array", ARRAYS)
def test_map_has_no_overlaps_and_fits(array):
    cfg = parse_array(array)
    m = regmap(cfg)
    m.check()
    # Independently: every byte claimed at most once, all below 2**addr_bits.
    spans = [(off, off + 4) for r in m.registers for off in r.offsets]
    spans += [(w.base, w.base + w.depth * w.stride) for w in m.windows]
    spans.sort()
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert s1 >= e0, f"{array}: [{s0:#x},{e0:#x}) overlaps [{s1:#x},{e1:#x})"
    assert spans[-1][1] <= 1 << 20
    assert all(w.base % w.stride == 0 for w in m.windows)


def test_overlap_is_detected():
    from hw.contract.regmap import RegMap
    cfg = ArrayConfig()
    a = Register("A", 0x10, (Field("A", 0, 32, "rw"),), "", count=4)
    b = Register("B", 0x18, (Field("B", 0, 32, "rw"),), "")
    with pytest.raises(ValueError, match="overlaps"):
        RegMap(cfg, [a, b], []).check()
    w = Window("W", 0xFF000, 8, 1024, "rw", "")
    with pytest.raises(ValueError, match="beyond"):
        RegMap(cfg, [], [w]).check()


@pytest.mark.parametrize("array", ARRAYS)
def test_offsets_follow_the_declared_rules(array):
    cfg = parse_array(array)
    m = regmap(cfg)
    fixed = {"ID": 0x000, "GEOMETRY": 0x004, "DEPTH_ACT": 0x008, "DEPTH_WGT": 0x00C,
             "DEPTH_ACC": 0x010, "DEPTH_PRM": 0x014, "DEPTH_IMG": 0x018, "LIMITS": 0x01C,
             "CTRL": 0x020, "STATUS": 0x024, "FIRST_LAYER": 0x028, "NUM_LAYERS": 0x02C,
             "WIDTH": 0x030}
    for name, off in fixed.items():
        assert m.offset(name) == off, name
    for j in range(cfg.n_desc):
        assert m.offset("CHAN", j) == 0x040 + 4 * j
        assert m.offset("LAYER_CYCLES", j) == 0x200 + 4 * j
        for i in range(DESC_WORDS):
            assert m.offset(f"DESC_W{i}", j) == 0x400 + 32 * j + 4 * i
            assert m.desc_offset(j, i) == 0x400 + 32 * j + 4 * i
    names = ["CYCLES", "BUSY_CYCLES", "MACS", "GATED_PE_CYCLES", "STALL_CYCLES", "BUS_RD_BYTES",
             "BUS_WR_BYTES"] + [f"{b}_{d}" for b in BUFFERS for d in ("RD", "WR")]
    assert list(COUNTERS) == names
    for k, name in enumerate(names):
        assert counter_offset(name) == 0x100 + 8 * k
        assert m.offset(f"{name}_LO") == 0x100 + 8 * k
        assert m.offset(f"{name}_HI") == 0x104 + 8 * k
    n = cfg.n
    wins = {"LOGITS": (0x0_8000, 4, cfg.max_classes, "ro"), "PARAMS": (0x1_0000, 8 * n, cfg.prm_depth, "rw"),
            "IMAGE": (0x2_0000, cfg.img_channels * cfg.img_pack, -(-cfg.img_depth // cfg.img_pack), "rw"),
            "ACT_A": (0x4_0000, n, cfg.act_depth, "rw"), "ACT_B": (0x6_0000, n, cfg.act_depth, "rw"),
            "WEIGHTS": (0x8_0000, n, cfg.wgt_depth, "rw")}
    assert [w.name for w in m.windows] == list(wins)
    for name, (base, wb, depth, access) in wins.items():
        w = m.window(name)
        assert (w.base, w.word_bytes, w.depth, w.access) == (base, wb, depth, access)
        assert w.address(depth - 1, 3) == base + (depth - 1) * w.stride + 3


def test_fields_follow_the_declared_layout():
    cfg = ArrayConfig(rows=4, cols=4, img_channels=2, n_desc=9, line_depth=300, max_classes=12,
                      max_kernel=5, max_groups=6)
    m = regmap(cfg)
    want = {("GEOMETRY", "ROWS"): (0, 8), ("GEOMETRY", "COLS"): (8, 8),
            ("GEOMETRY", "IMG_CHANNELS"): (16, 8), ("GEOMETRY", "N_DESC"): (24, 8),
            ("LIMITS", "LINE_DEPTH"): (0, 16), ("LIMITS", "MAX_CLASSES"): (16, 8),
            ("LIMITS", "MAX_KERNEL"): (24, 4), ("LIMITS", "MAX_GROUPS"): (28, 4),
            ("CTRL", "START"): (0, 1), ("CTRL", "ABORT"): (1, 1), ("CTRL", "CLEAR_COUNTERS"): (2, 1),
            ("STATUS", "BUSY"): (0, 1), ("STATUS", "DONE"): (1, 1), ("STATUS", "ERROR"): (2, 1),
            ("STATUS", "ERROR_CODE"): (8, 4), ("STATUS", "LAYER"): (16, 8),
            ("CHAN", "OUT_GROUPS"): (0, 8), ("CHAN", "IN_GROUPS"): (8, 8),
            ("FIRST_LAYER", "FIRST_LAYER"): (0, 8), ("WIDTH", "WIDTH"): (0, 8)}
    for (r, f), (lsb, width) in want.items():
        fld = m.field(r, f)
        assert (fld.lsb, fld.width) == (lsb, width), (r, f)
    assert m.reg("ID").reset == 0x43534331
    assert m.reg("GEOMETRY").reset == 4 | 4 << 8 | 2 << 16 | 9 << 24
    assert m.reg("LIMITS").reset == 300 | 12 << 16 | 5 << 24 | 6 << 28
    assert [m.reg(f"DEPTH_{b}").reset for b in ("ACT", "WGT", "ACC", "PRM", "IMG")] == [
        cfg.act_depth, cfg.wgt_depth, cfg.acc_depth, cfg.prm_depth, cfg.img_depth]
    assert m.reg("CTRL").access == "w1" and m.reg("STATUS").access == "ro"
    assert m.reg("CHAN").access == "rw" and m.reg("CHAN").count == 9
    assert (Error.NONE, Error.BAD_GROUPS, Error.BAD_SHAPE, Error.BAD_DESCRIPTOR, Error.ABORTED) == (
        0, 1, 2, 3, 4)
    assert ERROR_CODES is Error


def test_lookup_agrees_with_offsets():
    m = regmap(ArrayConfig(rows=4, cols=4, n_desc=5))
    for r in m.registers:
        for j, off in enumerate(r.offsets):
            assert m.lookup(off + 3) == ("reg", r, j)
    w = m.window("PARAMS")  # 32-byte entries
    assert m.lookup(w.base + 2 * 32 + 20) == ("window", w, 2, 20)
    assert m.lookup(w.end) is None and m.lookup(0x034) is None and m.lookup(0x1B8) is None


# --------------------------------------------------------------------------------------------
# Descriptors


def test_descriptor_word_layout():
    layout = {name: (i, f.lsb, f.width) for i, word in enumerate(DESC_FIELDS) for f in word
              for name in [f.name]}
    assert layout == {
        "KIND": (0, 0, 2), "SRC": (0, 2, 2), "DST": (0, 4, 2), "RELU": (0, 6, 1),
        "POOL": (0, 7, 1), "TRIANGULAR": (0, 8, 1), "SELECT_K": (0, 12, 4),
        "CIN": (1, 0, 16), "COUT": (1, 16, 16), "H": (2, 0, 16), "W": (2, 16, 16),
        "KERNEL": (3, 0, 8), "STRIDE": (3, 8, 8), "PAD": (3, 16, 8), "GROUPS": (3, 24, 8),
        "W_BASE": (4, 0, 32), "P_BASE": (5, 0, 32), "SRC_BASE": (6, 0, 32), "DST_BASE": (7, 0, 32)}
    words = encode_descriptor({"kind": 1, "src": 2, "dst": 3, "relu": True, "pool": 1,
                               "triangular": 1, "select_k": 5, "cin": 32, "cout": 64, "h": 14,
                               "w": 28, "kernel": 3, "stride": 2, "pad": 1, "groups": 4,
                               "w_base": 100, "p_base": 7, "src_base": 0x1234, "dst_base": 9})
    assert words == [1 | 2 << 2 | 3 << 4 | 1 << 6 | 1 << 7 | 1 << 8 | 5 << 12, 32 | 64 << 16,
                     14 | 28 << 16, 3 | 2 << 8 | 1 << 16 | 4 << 24, 100, 7, 0x1234, 9]
    assert desc_field("GROUPS") == (3, DESC_FIELDS[3][3])


@pytest.mark.parametrize("seed", [21, 22])
def test_descriptor_round_trip(seed):
    rng = random.Random(seed)
    fields = {f.name.lower(): f.width for word in DESC_FIELDS for f in word}
    for _ in range(200):
        d = {k: rng.getrandbits(w) for k, w in fields.items()}
        words = encode_descriptor(d)
        assert len(words) == 8 and all(0 <= x < 1 << 32 for x in words)
        assert decode_descriptor(words) == d, f"seed={seed}: {d}"
    partial = encode_descriptor({"kind": 2, "cout": 10})
    assert decode_descriptor(partial) == {**{k: 0 for k in fields}, "kind": 2, "cout": 10}


@pytest.mark.parametrize("bad", [
    {"kind": 4}, {"kind": -1}, {"select_k": 16}, {"cin": 1 << 16}, {"w_base": 1 << 32},
    {"relu": 2}, {"cout": 3.0}, {"h": "8"}, {"color": 1}, {"KIND": 1},
])
def test_descriptor_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        encode_descriptor(bad)


def test_decode_descriptor_rejects_bad_words():
    with pytest.raises(ValueError, match="8 words"):
        decode_descriptor([0] * 7)
    with pytest.raises(ValueError, match="32-bit"):
        decode_descriptor([0] * 7 + [1 << 32])
    with pytest.raises(ValueError, match="32-bit"):
        decode_descriptor([-1] + [0] * 7)
    assert decode_descriptor([0xFFFF_FFFF] + [0] * 7)["select_k"] == 15  # reserved bits ignored


def test_descriptor_layout_matches_words():
    from amaranth.lib import data
    from hw.contract.regmap import descriptor_layout
    layout = descriptor_layout()
    assert layout.size == 256
    d = {"kind": 2, "src": 1, "cout": 10, "groups": 4, "dst_base": 0xDEADBEEF}
    words = encode_descriptor(d)
    raw = sum(w << (32 * i) for i, w in enumerate(words))
    const = layout.const(d)
    assert isinstance(layout, data.FlexibleLayout) and const.as_value().value == raw


# --------------------------------------------------------------------------------------------
# Documentation


@pytest.mark.parametrize("array", ["4x4", "8x8"])
def test_markdown_lists_everything(array):
    cfg = parse_array(array)
    text = markdown(cfg)
    m = regmap(cfg)
    for r in m.registers:
        assert f"| {r.name} |" in text, r.name
    for w in m.windows:
        assert f"| {w.name} |" in text, w.name
    for e in Error:
        assert f"| {e.name} |" in text
    for word in DESC_FIELDS:
        for f in word:
            assert f"| {f.name} |" in text
    assert "`0x400 + 32*j`" in text and "ERROR_CODE[11:8]" in text


def test_markdown_cli(subprocess_env):
    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "hw.contract.regmap", "--markdown", "--array", "4x4"],
                       capture_output=True, text=True, timeout=60, cwd=repo, env=subprocess_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == markdown(parse_array("4x4"))
    r = subprocess.run([sys.executable, "-m", "hw.contract.regmap", "--markdown", "--array", "8x4"],
                       capture_output=True, text=True, timeout=60, cwd=repo, env=subprocess_env)
    assert r.returncode == 2 and "R == C" in r.stderr
