"""FPGA flow (hw/flow/synth.py) and Verilator lint (hw/flow/lint.py).

* A Yosys-only smoke test: a 4x4 array through ``synth_ecp5`` (the project's flow, DSP policy
  "datapath", with the I/O wrapper) up to the LUT mapping, resource counts from Yosys'
  ``stat -json``; the complete synthesis of the 4x4 is a slow-marked test.
* The lint of a 4x4 array is clean with hw/flow/lint_waivers.vlt.
* Fast checks of the pieces that need no tool: the wrapper, the fit verdict, the report parser,
  the command line.

Place and route runs (minutes to an hour each) are make targets (`make synth`), not tests.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import REPO
from hw.flow import depth, devices, nextpnr, synth, tools, wrapper, yosys
from hw.contract.params import parse_array


def _smoke(tmp_path, lut_map):
    cfg = parse_array("4x4")
    n = cfg.rows
    rep = synth.run_synth(cfg, "ecp5-45k", out_dir=tmp_path / "synth", verilog_dir=tmp_path / "verilog",
                          pnr=False, use_cache=False, timeout=900, lut_map=lut_map, log=lambda *a: None)
    assert rep["status"] == "ok", rep.get("error")
    work = tmp_path / "synth" / ("4x4_ecp5_datapath" + ("" if lut_map else "_nolut"))
    stat = json.loads((work / "stat.json").read_text())
    assert yosys.parse_stat(work / "stat.json") == rep["yosys_cells"] and stat["design"]["num_cells"] > 0
    res = rep["resources"]
    for key in ("ffs", "dsp", "bram", "carry", "lut4" if lut_map else "gates"):
        assert res[key] > 0, (key, res)
    # DSP policy "datapath": one MULT18X18D per PE, two per requantizer lane (32 x 17 bits).
    assert res["dsp"] == n * n + 2 * n, res
    # The report on disk is the one returned.
    name = "4x4_ecp5-45k_nopnr" + ("" if lut_map else "_nolut") + ".json"
    on_disk = json.loads((tmp_path / "synth" / name).read_text())
    assert on_disk["resources"] == res and on_disk["fits"] is None and on_disk["times_s"]["yosys"] > 0
    return rep


def test_yosys_smoke_4x4(tmp_path):
    """`synth_ecp5` on a 4x4 array up to, not including, the ABC9 LUT mapping: Verilog read,
    memories to DP16KD, the datapath's multipliers to MULT18X18D, carry chains and flip-flops
    mapped. ABC9 alone takes 1.5 to 5 minutes on a 4x4 (WebAssembly, one core, shared machine),
    which the CI budget of 3 minutes cannot hold; the complete run is the slow test below and
    `make synth ARRAY=4x4 SYNTH_FLAGS=--no-pnr`. Then the check a `--seeds` process makes: the
    same sources give the same Yosys key (the cached netlist is used), another key stops the run
    before any tool, with the report saying why."""
    rep = _smoke(tmp_path, lut_map=False)
    kw = dict(out_dir=tmp_path / "synth", verilog_dir=tmp_path / "verilog", pnr=False, lut_map=False,
              log=lambda *a: None)
    again = synth.run_synth(parse_array("4x4"), "ecp5-45k", yosys_key=rep["yosys_key"], **kw)
    assert again["status"] == "ok" and again["yosys_cached"] and again["resources"] == rep["resources"]
    other = "0" * len(rep["yosys_key"])
    with pytest.raises(tools.ToolError, match="sources edited"):
        synth.run_synth(parse_array("4x4"), "ecp5-45k", yosys_key=other, **kw)
    failed = json.loads((tmp_path / "synth" / "4x4_ecp5-45k_nopnr_nolut.json").read_text())
    assert failed["status"] == "error" and "sources edited" in failed["error"] and "yosys" not in failed["times_s"]


@pytest.mark.slow
def test_yosys_full_4x4(tmp_path):
    """The complete `synth_ecp5` of a 4x4 array, LUT mapping included (about 4 to 8 minutes)."""
    rep = _smoke(tmp_path, lut_map=True)
    assert rep["resources"]["luts"] >= rep["resources"]["lut4"] > 1000


def test_lint_4x4_clean(tmp_path):
    from hw.flow.gen import generate
    from hw.flow.lint import lint

    path = generate(parse_array("4x4"), tmp_path)
    res = lint(path, path.stem, timeout=300)
    assert res["ok"], "\n".join(f"%{k}-{r}: {t}" for k, r, t in res["messages"]) or res["output"]


def test_waivers_each_have_a_reason():
    """Every lint_off line in hw/flow/lint_waivers.vlt is preceded by a comment saying why."""
    lines = (REPO / "hw" / "flow" / "lint_waivers.vlt").read_text().splitlines()
    waivers = [i for i, ln in enumerate(lines) if ln.strip().startswith("lint_off")]
    assert waivers
    for i in waivers:
        assert "-rule" in lines[i], lines[i]  # one rule per waiver, never a blanket lint_off
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("lint_off"):
            j -= 1
        assert j >= 0 and lines[j].strip().startswith("//") and len(lines[j].strip()) > 10, lines[i]


def test_wrapper_connects_every_port(tmp_path):
    cfg = parse_array("4x4")
    w = wrapper.write_wrapper(cfg, "chanscale_4x4", tmp_path / "w.v")
    text = (tmp_path / "w.v").read_text()
    ports = wrapper.accel_ports(cfg)
    assert w["input_bits"] == sum(b for _, b, i in ports if i) and w["output_bits"] == sum(b for _, b, i in ports if not i)
    for name, _, _ in ports:
        assert re.search(rf"\.{name}\((in_sr|outs)\[", text), name
    assert "s_axil_awaddr" in text and "irq" in text and ".clk(clk)" in text and ".rst(rst)" in text


def test_fit_check():
    dev = devices.DEVICES["ecp5-25k"]
    assert yosys.fit_check(dev, dict(luts=100, ffs=100, dsp=28, bram=56)) is None
    msg = yosys.fit_check(dev, dict(luts=100, ffs=100, dsp=80, bram=71))
    assert msg == "does not fit: 80 of 28 MULT18X18D, 71 of 56 DP16KD"
    up5k = devices.DEVICES["ice40-up5k"]
    assert "of 8 SB_MAC16" in yosys.fit_check(up5k, dict(luts=10, ffs=10, dsp=24, bram=0, spram=0))
    assert nextpnr.pnr_overflow("Info:          MULT18X18D:    80/   72   111%\n") == \
        "does not fit: 80 of 72 MULT18X18D"


def test_critical_path_summary():
    report = {"critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": [
        {"type": "clk-to-q", "from": {"cell": "dut.seq.a_TRELLIS_FF_Q", "port": "CLK"},
         "to": {"cell": "dut.seq.a_TRELLIS_FF_Q", "port": "Q"}, "delay": 0.5},
        {"type": "routing", "from": {"cell": "dut.seq.a_TRELLIS_FF_Q", "port": "Q"},
         "to": {"cell": "x_LUT4_Z", "port": "A"}, "delay": 2.0},
        {"type": "logic", "from": {"cell": "x_LUT4_Z", "port": "A"}, "to": {"cell": "x_LUT4_Z", "port": "Z"},
         "delay": 0.25},
        {"type": "routing", "from": {"cell": "x_LUT4_Z", "port": "Z"},
         "to": {"cell": "dut.seq.b_TRELLIS_FF_Q_1", "port": "DI"}, "delay": 1.0},
        {"type": "setup", "from": {"cell": "dut.seq.b_TRELLIS_FF_Q_1", "port": "DI"},
         "to": {"cell": "dut.seq.b_TRELLIS_FF_Q_1", "port": "CLK"}, "delay": 0.1}]}]}
    cp = nextpnr.critical_path(report)
    assert cp["line"] == "seq.a -> seq.b: 3.85 ns = 0.85 ns logic (1 cells) + 3.00 ns routing"
    assert nextpnr.critical_path({}) is None


def test_lut_pe_rows_fit_the_dsp_budget():
    """8x8 needs 64 + 16 multipliers: the ECP5-45F (72) moves one PE row to LUTs, the 85F none;
    the Yosys script then leaves exactly those rows' multipliers out of the DSP mapping."""
    assert devices.lut_pe_rows(8, 72) == 1 and devices.lut_pe_rows(8, 156) == 0 and devices.lut_pe_rows(4, 24) == 0
    assert devices.lut_pe_rows(8, 28) == 7 and devices.lut_pe_rows(16, 28) == 16
    for n, cap in ((4, 10), (8, 72), (8, 28)):
        rows = devices.lut_pe_rows(n, cap)
        assert n * (n - rows) + 2 * n <= cap or rows == n
    # the policies: "requant" moves every PE row to LUTs, "all" and iCE40 none
    e45, ice = devices.DEVICES["ecp5-45k"], devices.DEVICES["ice40-up5k"]
    assert [devices.pe_rows_in_luts(8, e45, d) for d in ("datapath", "requant", "all")] == [1, 8, 0]
    assert devices.pe_rows_in_luts(8, ice, "datapath") == 0
    # the netlist instantiates the blocks itself, so Yosys maps no multiplier but under "all"
    assert "-nodsp" in yosys.yosys_script("ecp5", ["a.v"], "top", "s.json", None, dsp="requant")
    assert "-nodsp" not in yosys.yosys_script("ecp5", ["a.v"], "top", "s.json", None, dsp="all")


def test_ecp5_netlist_puts_the_chosen_rows_on_dsp_blocks(tmp_path):
    """The ECP5 netlist (hw.gateware.dsp.Ecp5Dsp as the platform) of a 4x4 array: a MULT18X18D in every
    PE of the rows the target keeps on DSP blocks and none in the others, two per requantizer
    lane; the portable Verilog has none."""
    from hw.gateware.dsp import Ecp5Dsp
    from hw.flow.gen import generate
    cfg = parse_array("4x4")
    for lut_rows in (0, 1, 4):
        text = generate(cfg, tmp_path, f"e{lut_rows}", platform=Ecp5Dsp(4, lut_rows)).read_text()
        modules = re.split(r"^module ", text, flags=re.M)[1:]
        with_dsp = {mod.split("(")[0].strip() for mod in modules if "MULT18X18D #" in mod}
        pes = {f"pe_{r}_{c}" for r in range(4) for c in range(4)}
        pe_dsp = {p for p in pes if any(name.endswith("." + p) for name in with_dsp)}
        assert pe_dsp == {f"pe_{r}_{c}" for r in range(4 - lut_rows) for c in range(4)}, (lut_rows, with_dsp)
        assert text.count("MULT18X18D #") == 4 * (4 - lut_rows) + 2 * 4
    assert "MULT18X18D" not in generate(cfg, tmp_path, "plain").read_text()


def test_logic_depth_finds_the_deepest_register_to_register_path():
    """A hand-built ECP5 netlist: FF a -> LUT -> LUT -> carry chain of 3 cells -> FF b (depth
    1 + 1 + 1 + 0.1 + 0.1 = 3.2), FF a -> LUT -> FF c (1), and a LUT loop that must not hang."""
    def ff(d, q):
        return {"type": "TRELLIS_FF", "connections": {"CLK": [1], "DI": [d], "Q": [q]}}

    def lut(ins, z):
        return {"type": "LUT4", "connections": {**{k: [b] for k, b in zip("ABCD", ins)}, "Z": [z]}}

    def ccu(a, cin, s0, cout):
        return {"type": "CCU2C", "connections": {"A0": [a], "CIN": [cin], "S0": [s0], "COUT": [cout]}}

    cells = {"fa": ff(2, 10), "l1": lut([10], 11), "l2": lut([11], 12),
             "c1": ccu(12, "0", 20, 13), "c2": ccu(10, 13, 21, 14), "c3": ccu(10, 14, 15, 22),
             "fb": ff(15, 30), "l3": lut([10], 16), "fc": ff(16, 31),
             "loop1": lut([41], 40), "loop2": lut([40], 41), "fd": ff(40, 32)}
    netlist = {"modules": {"top": {"attributes": {"top": 1}, "cells": cells, "netnames": {
        "dut.seq.a": {"bits": [10]}, "dut.seq.b_TRELLIS_FF_Q_DI": {"bits": [15]}, "c": {"bits": [16]}}}}}
    d = depth.logic_depth(netlist, "ecp5")
    assert (d["start"], d["end"], d["lut_levels"], d["carry_cells"]) == ("seq.a", "seq.b", 2, 3), d
    assert d["score"] == pytest.approx(1 + 1 + 1 + 0.1 + 0.1), d
    assert d["line"].startswith("seq.a -> seq.b: 3.2 unit delays (2 LUT levels, 3 carry cells")
    assert depth.logic_depth({"modules": {"top": {"cells": {"fa": ff(2, 3)}, "netnames": {}}}}, "ecp5") is None


def test_deep_paths_lists_one_path_per_end_register_deepest_first():
    """Two 2-bit registers b (bit 0 behind 3 LUTs, bit 1 behind 1) and c (behind 2 LUTs) fed
    from register a: one path per register, b first with its deeper bit, and each path's nets
    from start to end."""
    def ff(d, q):
        return {"type": "TRELLIS_FF", "connections": {"CLK": [1], "DI": [d], "Q": [q]}}

    def lut(ins, z):
        return {"type": "LUT4", "connections": {**{k: [b] for k, b in zip("ABCD", ins)}, "Z": [z]}}

    cells = {"fa": ff(2, 10), "l1": lut([10], 11), "l2": lut([11], 12), "l3": lut([12], 13),
             "fb0": ff(13, 30), "l4": lut([10], 14), "fb1": ff(14, 31),
             "l5": lut([10], 15), "l6": lut([15], 16), "fc": ff(16, 32)}
    netlist = {"modules": {"top": {"attributes": {"top": 1}, "cells": cells, "netnames": {
        "dut.seq.a": {"bits": [10]}, "dut.seq.b": {"bits": [30, 31]}, "dut.seq.c": {"bits": [32]},
        "dut.seq.mid": {"bits": [11]}}}}}
    paths = depth.deep_paths(netlist, "ecp5", 5)
    assert [(p["start"], p["end"], p["lut_levels"]) for p in paths] == [("seq.a", "seq.b", 3), ("seq.a", "seq.c", 2)]
    assert paths[0]["through"][:2] == ["seq.a", "seq.mid"]
    assert depth.deep_paths(netlist, "ecp5", 1) == paths[:1]
    assert depth.logic_depth(netlist, "ecp5") == paths[0]


@pytest.mark.parametrize("args, needle", [
    (["--array", "3x5"], "array must be RxC"),
    (["--array", "4x4", "--device", "xc7a35t"], "invalid choice"),
    (["--array", "4x4", "--freq", "0"], "--freq must be positive"),
    (["--array", "4x4", "--device", "ice40-up5k", "--speed", "8"], "speed grade 8 is not offered"),
    (["--array", "4x4", "--placer", "sa"], "invalid choice"),
    (["--array", "4x4", "--seeds", "1,x"], "--seeds takes distinct positive integers"),
    (["--array", "4x4", "--seeds", "2,2"], "--seeds takes distinct positive integers"),
    (["--array", "4x4", "--seeds", "0,1"], "--seeds takes distinct positive integers"),
    (["--array", "4x4", "--seeds", "1,2", "--seed", "3"], "drop --seed"),
    (["--array", "4x4", "--seeds", "1,2", "--no-pnr"], "drop --seed, --no-pnr"),
    (["--array", "4x4", "--seeds", "1,2", "--jobs", "0"], "--jobs must be at least 1"),
    (["--array", "4x4", "--jobs", "2"], "--jobs goes with --seeds"),
])
def test_cli_bad_arguments(args, needle):
    p = subprocess.run([sys.executable, "-m", "hw.flow.synth", *args], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and needle in p.stderr, (p.returncode, p.stderr)


def test_ecp5_clock_and_reset_go_to_pclk_pins(tmp_path):
    """Every ECP5 part constrains the wrapper's clock (clk) and reset (rst_pin) ports to PCLK
    pins, two different ones, and its wrapper puts the reset on a global network through a
    DCCA; the iCE40 flow has no constraints (nextpnr-ice40 finds the global buffer itself) and
    registers the reset in the fabric."""
    from hw.flow.devices import DEVICES
    from hw.flow.wrapper import pin_constraints, write_wrapper
    from hw.contract.params import parse_array
    cfg = parse_array("4x4")
    plain, glob = tmp_path / "plain.v", tmp_path / "global.v"
    assert write_wrapper(cfg, "chanscale_4x4", plain)["reset"] == "register"
    assert write_wrapper(cfg, "chanscale_4x4", glob, global_reset=True)["reset"] == "global (DCCA)"
    assert "input wire clk" in plain.read_text() and "DCCA" not in plain.read_text()
    assert "always @(posedge clk) rst <= rst_pin;" in plain.read_text()
    assert "DCCA rst_buf (.CLKI(rst_pin), .CE(1'b1), .CLKO(rst));" in glob.read_text()
    assert "rst <=" not in glob.read_text()
    for name, dev in DEVICES.items():
        lpf = pin_constraints(dev)
        if dev.family == "ecp5":
            assert f'LOCATE COMP "clk" SITE "{dev.clock_pin}";' in lpf, name
            assert f'LOCATE COMP "rst_pin" SITE "{dev.reset_pin}";' in lpf, name
            assert dev.reset_pin != dev.clock_pin, name
        else:
            assert lpf is None and dev.reset_pin is None, name


def test_speed_grade_changes_the_part_and_the_timing_model():
    """--speed 8 names the -8 part and passes --speed 8 to nextpnr; the device table itself is
    left as it was."""
    from hw.flow.devices import DEVICES, with_speed
    base = DEVICES["ecp5-45k"]
    fast = with_speed(base, 8)
    assert (base.speed, base.part) == (6, "LFE5U-45F-6BG381C")
    assert (fast.speed, fast.part) == (8, "LFE5U-45F-8BG381C")
    i = fast.pnr_args.index("--speed")
    assert fast.pnr_args[i + 1] == "8" and base.pnr_args[i + 1] == "6"
    assert fast.capacity == base.capacity and fast.clock_pin == base.clock_pin


def test_report_names_follow_the_options():
    """A report's name says how it was made, so runs with different options sit side by side."""
    stem = synth.report_stem
    assert stem("8x8", "ecp5-45k", 6) == "8x8_ecp5-45k"
    assert stem("8x8", "ecp5-45k", 8, seed=3) == "8x8_ecp5-45k_s8_seed3"
    assert stem("4x4", "ecp5-85k", 6, placer="heap", router="router2") == "4x4_ecp5-85k_heap_router2"
    assert stem("4x4", "ecp5-45k", 6, pnr=False) == "4x4_ecp5-45k_nopnr"
    assert stem("4x4", "ecp5-45k", 6, route=False) == "4x4_ecp5-45k_placed"
    assert stem("4x4", "ice40-up5k", None) == "4x4_ice40-up5k"
    assert stem("8x8", "ecp5-45k", 8, design="macgrid") == "macgrid_8x8_ecp5-45k_s8"


@pytest.mark.parametrize("pipelined", [False, True])
def test_macgrid_is_an_output_stationary_mac_grid(pipelined):
    """The baseline grid (hw/flow/macgrid.py), simulated: every cell's parity bit equals the parity of
    the sum the systolic timing gives, computed here in closed form. Cell (i, j) multiplies, in
    cycle t, the a_in[i] of cycle t - 1 - j by the b_in[j] of cycle t - 1 - i (zeros where clr
    was 1 in that cycle), and starts from 0 the cycle after a clear's register (clr_r) is 1. The
    pipelined grid (products registered) gives the same values a cycle later."""
    import numpy as np
    from amaranth.sim import Simulator
    from hw.flow.macgrid import MacGrid

    n, cycles = 3, 24
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, size=(cycles, n))
    b = rng.integers(-128, 128, size=(cycles, n))
    clr = np.zeros(cycles, dtype=int)
    clr[[0, 11]] = 1
    a_eff, b_eff = a * (1 - clr)[:, None], b * (1 - clr)[:, None]  # what enters the grid
    dut = MacGrid(n, pipelined)
    late = 1 if pipelined else 0
    seen = []

    async def bench(ctx):
        for t in range(cycles):
            ctx.set(dut.clr, int(clr[t]))
            for k in range(n):
                ctx.set(dut.a_in[k], int(a[t, k]))
                ctx.set(dut.b_in[k], int(b[t, k]))
            await ctx.tick()
            seen.append(ctx.get(dut.par))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()

    def acc(i, j, t):  # the accumulator during cycle t (after t clock edges)
        total = 0
        for u in range(t):  # edge at the end of cycle u
            if u >= 1 and clr[u - 1]:  # clr_r == 1 in cycle u
                total = 0
            elif u - 1 - j >= 0 and u - 1 - i >= 0:
                total += int(a_eff[u - 1 - j, i]) * int(b_eff[u - 1 - i, j])
        return total & 0xFFFFFFFF

    checked = 0
    for t in range(2 + late, cycles + 1):  # par after edge t: the parity of acc during cycle t - 1
        u = t - 1 - late  # (the pipelined grid's acc holds the plain one's a cycle later)
        want = sum((bin(acc(i, j, u)).count("1") & 1) << (i * n + j) for i in range(n) for j in range(n))
        assert seen[t - 1] == want, (t, seen[t - 1], want)
        checked += any(acc(i, j, u) for i in range(n) for j in range(n))
    assert checked > cycles // 2  # the sums were not all zero


def test_macgrid_through_the_flow(tmp_path):
    """`--design macgrid` runs the baseline through the same flow (Yosys up to LUT mapping): one
    MULT18X18D per cell from Yosys' own mapping, its own report name and work folder, and the
    command line names it."""
    cfg = parse_array("4x4")
    rep = synth.run_synth(cfg, "ecp5-45k", out_dir=tmp_path / "synth", verilog_dir=tmp_path / "verilog",
                          pnr=False, lut_map=False, design="macgrid", log=lambda *a: None)
    assert rep["status"] == "ok" and rep["design"] == "macgrid" and rep["dsp_policy"] == "all", rep
    # one MULT18X18D per cell; every cell keeps its operand, accumulator and parity registers
    assert rep["resources"]["dsp"] == 16 and rep["resources"]["ffs"] >= 16 * (8 + 8 + 32 + 1), rep["resources"]
    assert (tmp_path / "synth" / "macgrid_4x4_ecp5-45k_nopnr_nolut.json").exists()
    assert (tmp_path / "synth" / "macgrid_4x4_ecp5_all_nolut" / "macgrid_4x4.v").exists()
    assert rep["config"] == dict(rows=4, cols=4)
    p = subprocess.run([sys.executable, "-m", "hw.flow.synth", "--design", "macgrid", "--array", "4x4", "--no-pnr",
                        "--no-lut-map", "--out", str(tmp_path / "cli")], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0 and "macgrid 4x4 on ecp5-45k" in p.stdout, (p.returncode, p.stdout, p.stderr)
    piped = synth.run_synth(cfg, "ecp5-45k", out_dir=tmp_path / "synth", pnr=False, lut_map=False,
                            design="macgrid_pipelined", log=lambda *a: None)
    assert piped["resources"]["dsp"] == 16 and piped["resources"]["ffs"] >= rep["resources"]["ffs"] + 16 * 16
    assert (tmp_path / "synth" / "macgrid_pipelined_4x4_ecp5-45k_nopnr_nolut.json").exists()
    with pytest.raises(ValueError, match="design must be one of"):
        synth.run_synth(cfg, "ecp5-45k", out_dir=tmp_path / "x", pnr=False, design="grid", log=lambda *a: None)


def test_seed_summary_ranks_the_seeds():
    """``--seeds``' summary: the best seed by Fmax, how many met the target, the range and mean
    over the seeds that were timed; a failed seed is listed but not ranked."""
    def rep(seed, fmax, status="ok"):
        return dict(array="8x8", device="ecp5-45k", part="LFE5U-45F-8BG381C", speed_grade=8, target_mhz=100.0,
                    placer="static", router="router1", seed=seed, status=status, fmax_mhz=fmax,
                    meets_target=None if fmax is None else fmax >= 100.0, report=f"r{seed}.json",
                    critical_path={"line": f"path {seed}"} if fmax else None, times_s={"nextpnr": 10.0 * seed},
                    error="nextpnr exited 1" if status == "error" else None)
    fmaxes = {1: 97.91, 2: 106.62, 3: None, 4: 101.8}
    reps = [rep(s, f, "error" if f is None else "ok") for s, f in fmaxes.items()]
    summ = synth.seed_summary(reps)
    timed = {s: f for s, f in fmaxes.items() if f is not None}
    assert summ["best_seed"] == max(timed, key=timed.get) and summ["best_report"] == f"r{summ['best_seed']}.json"
    assert summ["runs"] == len(fmaxes) and summ["timed"] == len(timed)
    assert summ["met"] == sum(f >= 100.0 for f in timed.values())
    assert (summ["fmax_min_mhz"], summ["fmax_max_mhz"]) == (min(timed.values()), max(timed.values()))
    assert summ["fmax_mean_mhz"] == pytest.approx(sum(timed.values()) / len(timed), abs=0.005)
    assert [r["seed"] for r in summ["seeds"]] == list(fmaxes)
    assert summ["seeds"][2]["status"] == "error" and summ["seeds"][2]["error"] == "nextpnr exited 1"
    assert summ["seeds"][0]["critical_path"] == "path 1" and summ["seeds"][1]["nextpnr_s"] == 20.0
    assert synth.seed_summary([rep(1, None, "error")])["best_seed"] is None
