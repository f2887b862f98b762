"""The ECP5 netlist's DSP blocks (hw/gateware/dsp.py) against the portable RTL, module by module.

The PE and the requantizer are each converted twice: portable (platform None, the RTL every
other test checks against the golden model) and for the ECP5 target (``Ecp5Dsp``: MULT18X18D
instances with their own registers). Icarus runs both side by side on the same random inputs,
with the primitive's Verilog model (``mult18x18d_model``), and every output must be equal in
every cycle after a short warm-up (the DSP registers have no reset value, the portable ones do).
The whole accelerator's ECP5 netlist is checked against the golden model in
``sim/test_accel.py::test_ecp5_netlist``.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from amaranth import Cat, Module
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.gateware.dsp import Ecp5Dsp, mult18x18d_model, reg_copy, trellis_ff_model
from hw.gateware.pe import ProcessingElement
from hw.gateware.postproc import Requant


@pytest.fixture(autouse=True)
def _icarus():
    """Icarus is a dependency (`make install`): its absence fails these tests, it does not skip them."""
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        pytest.fail("Icarus Verilog (iverilog, vvp) not found: run `make install` (apt-get install iverilog)",
                    pytrace=False)


WARMUP = 6
CYCLES = 3000


def _ports(component):
    return [(name, Shape.cast(mb.shape).width, mb.flow == In) for name, mb in component.signature.members.items()]


def _side_by_side(tmp_path, make, platform, seed):
    """Run the portable and the ECP5 conversion of ``make()`` on the same random inputs; return
    the number of cycles whose outputs differ and the first few differences."""
    ref = make()
    ports = _ports(ref)
    ref_v = verilog.convert(ref, name="ref", emit_src=False)
    dut_v = verilog.convert(make(), name="dut", emit_src=False, platform=platform)
    assert "MULT18X18D" in dut_v and "MULT18X18D" not in ref_v
    ins = [(n, w) for n, w, i in ports if i]
    outs = [(n, w) for n, w, i in ports if not i]
    lines = ["`timescale 1ns/1ps", "module tb;", "  reg clk = 0, rst = 1;", "  integer cyc, errors;"]
    lines += [f"  reg [{w - 1}:0] i_{n};" for n, w in ins]
    for side in ("r", "d"):
        lines += [f"  wire [{w - 1}:0] {side}_{n};" for n, w in outs]
    for side, mod in (("r", "ref"), ("d", "dut")):
        conns = [".clk(clk)", ".rst(rst)"] + [f".{n}(i_{n})" for n, _ in ins] + [f".{n}({side}_{n})" for n, _ in outs]
        lines.append(f"  {mod} u_{side} ({', '.join(conns)});")
    lines += ["  initial begin", "    errors = 0;", f"    for (cyc = 0; cyc < {CYCLES}; cyc = cyc + 1) begin"]
    lines.append("      stimulus;")  # random inputs for this cycle
    lines += ["      #1 clk = 1; #1 clk = 0;", "      if (cyc == 2) rst = 0;"]
    same = " && ".join(f"(r_{n} === d_{n})" for n, _ in outs)
    shown = ", ".join(f"r_{n}, d_{n}" for n, _ in outs)
    fmt = " ".join(f"{n}=%h/%h" for n, _ in outs)
    lines += [f"      if (cyc > {WARMUP} && !({same})) begin",
              "        errors = errors + 1;",
              f'        if (errors <= 5) $display("DIFF cycle %0d: {fmt}", cyc, {shown});',
              "      end", "    end", '    $display("ERRORS %0d", errors);', "    $finish;", "  end"]
    # the stimulus: seeded $random words, concatenated up to each input's width
    lines += ["  integer tb_seed;", f"  initial tb_seed = {seed};", "  task stimulus; begin"]
    for n, w in ins:
        words = (w + 31) // 32
        lines.append(f"    i_{n} = {{{', '.join(['$random(tb_seed)'] * words)}}};")
    lines += ["  end endtask", "endmodule"]
    files = {"ref.v": ref_v, "dut.v": dut_v, "model.v": mult18x18d_model(), "tb.v": "\n".join(lines) + "\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for cmd in (["iverilog", "-g2005", "-o", "tb.vvp", "-s", "tb", *files], ["vvp", "-n", "tb.vvp"]):
        run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert run.returncode == 0, (cmd, run.stdout[-2000:], run.stderr[-2000:])
    out = run.stdout
    errors = [line for line in out.splitlines() if line.startswith("ERRORS")]
    assert errors, out
    return int(errors[-1].split()[1]), [line for line in out.splitlines() if line.startswith("DIFF")]


@pytest.mark.parametrize("seed", [1, 2])
def test_pe_on_dsp_equals_portable_pe(tmp_path, seed):
    """A PE on a MULT18X18D (operands gated to 0 without a MAC, registers loading every cycle)
    gives the portable PE's outputs cycle for cycle, under random pixels, tags and weight loads."""
    errors, diffs = _side_by_side(tmp_path, lambda: ProcessingElement(row=0), Ecp5Dsp(1), seed)
    assert errors == 0, diffs


def test_pe_in_a_lut_row_stays_portable():
    """A PE of a row the target leaves in LUTs is the portable PE."""
    text = verilog.convert(ProcessingElement(row=3), name="pe", emit_src=False, platform=Ecp5Dsp(4, lut_pe_rows=1))
    assert "MULT18X18D" not in text and "MULT18X18D" in verilog.convert(
        ProcessingElement(row=2), name="pe", emit_src=False, platform=Ecp5Dsp(4, lut_pe_rows=1))


@pytest.mark.parametrize("seed", [1, 2])
def test_requant_on_dsp_equals_portable_requant(tmp_path, seed):
    """The requantizer with its products in MULT18X18D output registers gives the portable
    requantizer's outputs cycle for cycle (random int32 sums, multipliers, shifts, ReLU)."""
    errors, diffs = _side_by_side(tmp_path, lambda: Requant(2), Ecp5Dsp(1), seed)
    assert errors == 0, diffs


def test_model_refuses_what_it_does_not_model(tmp_path):
    """The primitive's model stops the simulation with a message for a configuration outside
    its subset (here the pipeline register) instead of simulating something else."""
    tb = ("module tb; reg clk = 0; wire p0;\n"
          "  MULT18X18D #(.REG_PIPELINE_CLK(\"CLK0\")) u (.CLK0(clk), .A0(1'b1), .B0(1'b1), .P0(p0));\n"
          "  initial begin #5 $display(\"RAN ON\"); $finish; end\nendmodule\n")
    (tmp_path / "tb.v").write_text(tb)
    (tmp_path / "model.v").write_text(mult18x18d_model())
    for cmd in (["iverilog", "-g2005", "-o", "tb.vvp", "-s", "tb", "tb.v", "model.v"], ["vvp", "-n", "tb.vvp"]):
        run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert run.returncode == 0, (cmd, run.stderr[-2000:])
    assert "outside the modelled subset" in run.stdout and "RAN ON" not in run.stdout, run.stdout


class _TwoCopies(wiring.Component):
    """Two reg_copy registers of one input."""

    def __init__(self):
        super().__init__({"d": In(1), "q": Out(2)})

    def elaborate(self, platform):
        m = Module()
        a = reg_copy(m, "copy_a", self.d, platform)
        b = reg_copy(m, "copy_b", self.d, platform)
        m.d.comb += self.q.eq(Cat(a, b))
        return m


def _yosys_ffs(tmp_path, platform) -> int:
    """Flip-flops left by a complete synth_ecp5 of _TwoCopies."""
    from hw.flow.tools import _tool_cmd
    (tmp_path / "top.v").write_text(verilog.convert(_TwoCopies(), name="top", platform=platform))
    script = "read_verilog top.v; synth_ecp5 -top top; tee -o stat.json stat -json"
    subprocess.run(_tool_cmd("yosys") + ["-q", "-p", script], cwd=tmp_path, check=True, timeout=300,
                   stdout=subprocess.DEVNULL)
    cells = json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]
    return cells.get("TRELLIS_FF", 0)


def test_reg_copy_stays_two_flip_flops_on_the_ecp5_only(tmp_path):
    """Yosys merges two registers of the same input into one (the portable RTL), but not the
    TRELLIS_FF instances of the ECP5 target: the copies that cut a control net's fan-out survive."""
    (tmp_path / "plain").mkdir()
    (tmp_path / "ecp5").mkdir()
    assert _yosys_ffs(tmp_path / "plain", None) == 1
    assert _yosys_ffs(tmp_path / "ecp5", Ecp5Dsp(4)) == 2


def test_trellis_ff_model_is_a_register_and_refuses_the_rest(tmp_path):
    """The TRELLIS_FF model loads DI every clock; a clock enable or set/reset stops it."""
    tb = """module tb; reg clk = 0, d = 0; wire q; reg lsr = 0;
  TRELLIS_FF #(.GSR("DISABLED"), .CEMUX("1")) ff (.CLK(clk), .LSR(lsr), .CE(1'b1), .DI(d), .M(1'b0), .Q(q));
  integer i; reg [15:0] seen = 0; reg [15:0] sent = 16'hA5C3;
  initial begin
    for (i = 0; i < 16; i = i + 1) begin d = sent[i]; #1 clk = 1; #1 clk = 0; seen[i] = q; end
    if (seen !== sent) $display("MISMATCH %h %h", seen, sent); else $display("REGISTER OK");
    lsr = 1; #1 clk = 1; #1 clk = 0; $display("NOT STOPPED"); $finish;
  end
endmodule
"""
    (tmp_path / "tb.v").write_text(tb)
    (tmp_path / "model.v").write_text(trellis_ff_model())
    subprocess.run(["iverilog", "-g2005", "-o", "sim", "tb.v", "model.v"], cwd=tmp_path, check=True)
    out = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, capture_output=True, text=True, timeout=60).stdout
    assert "REGISTER OK" in out and "LSR (set/reset) is not modelled" in out and "NOT STOPPED" not in out, out
