"""Registered multipliers as ECP5 DSP blocks (MULT18X18D) with their own input/output registers.

Yosys maps a ``*`` to a MULT18X18D with every register bypassed, so the route into the block,
the multiplier and the route out are one path (the 8x8 array's critical path on the ECP5-45F
was exactly that: 4.45 ns of multiplier between 4.25 ns and 4.21 ns of routing). The datapath
already registers each multiplier's operands and product in the fabric; when the design is
converted for an ECP5 synthesis run, those registers move into the DSP block, so the multiplier
is a path of its own inside the block and the routes in and out each start or end at a register.

How it is chosen: :class:`Ecp5Dsp` is passed to Amaranth as the elaboration *platform*
(``hw.flow.gen.generate(..., platform=Ecp5Dsp(...))``, which ``hw.flow.synth`` does for ECP5). The PE and
the requantizer look at the platform: with none (simulation, ``make verilog``, ``make lint``)
they build the same registers and multiplier from plain Amaranth, cycle for cycle the same.
The primitive netlist is simulated against the golden model with :func:`mult18x18d_model`, a
Verilog model of the subset of MULT18X18D used here (``sim/test_accel.py``, target ``ecp5``).

The same platform keeps register copies apart (:func:`reg_copy`: a TRELLIS_FF instance per copy,
where Yosys would merge plain registers with the same input), so a control signal can have a
copy next to each of its consumers; :func:`trellis_ff_model` simulates them.
"""

from __future__ import annotations

from amaranth import ClockSignal, Const, Instance, Signal

__all__ = ["Ecp5Dsp", "ecp5_dsp", "mult18x18d", "mult18x18d_model", "reg_copy", "trellis_ff_model",
           "primitive_models", "MULT_WIDTH"]

MULT_WIDTH = 18  # operand width of one MULT18X18D


class Ecp5Dsp:
    """The ECP5 synthesis target (an Amaranth *platform* for ``elaborate``).

    ``n``: the array's rows; ``lut_pe_rows``: how many of the last PE rows keep LUT multipliers
    (the device has too few DSP blocks for all of them, see ``hw.flow.devices.lut_pe_rows``).
    """

    def __init__(self, n: int, lut_pe_rows: int = 0):
        if not 0 <= lut_pe_rows <= n:
            raise ValueError(f"lut_pe_rows must be in 0..{n}, not {lut_pe_rows}")
        self.n = n
        self.lut_pe_rows = lut_pe_rows

    def pe_on_dsp(self, row: int) -> bool:
        """Whether the PEs of ``row`` use a MULT18X18D (else LUT logic, from the plain RTL)."""
        return row < self.n - self.lut_pe_rows

    def __repr__(self):
        return f"Ecp5Dsp(n={self.n}, lut_pe_rows={self.lut_pe_rows})"


def ecp5_dsp(platform) -> Ecp5Dsp | None:
    """``platform`` if it is the ECP5 synthesis target, else None."""
    return platform if isinstance(platform, Ecp5Dsp) else None


def mult18x18d(m, name: str, a, b, *, signed: bool, reg_in: bool, reg_out: bool) -> Signal:
    """Add a MULT18X18D named ``name`` to module ``m``; return its 36-bit product ``P``.

    ``a``, ``b``: values of at most 18 bits, extended to 18 by their own signedness (``signed``:
    the block's SIGNEDA/SIGNEDB; an unsigned operand must then fit 17 bits). ``reg_in``: A and B
    go through the block's input registers; ``reg_out``: the product goes through the output
    register. Every register loads every cycle on ``CLK0``, the ``sync`` clock, with no reset
    (GSR off: the registers hold data, whose reset value nothing reads). No clock enable or
    reset is offered on purpose: a block of two DSP slices (four multipliers) has four CE and
    four RST nets between them, so per-multiplier control nets would leave blocks half used
    (nextpnr cannot place 56 PEs with their own enables on the ECP5-45F's 18 blocks).
    """
    def operand(v, what):
        v = v if hasattr(v, "shape") else Const(v)
        shape = v.shape()
        width = shape.width + (1 if signed and not shape.signed else 0)
        if width > MULT_WIDTH:
            raise ValueError(f"{name}: operand {what} needs {width} bits as a "
                             f"{'signed' if signed else 'unsigned'} value; a MULT18X18D takes {MULT_WIDTH}")
        if shape.signed and not signed:
            raise ValueError(f"{name}: operand {what} is signed but the multiplier is unsigned")
        ext = Signal(MULT_WIDTH, name=f"{name}_{what.lower()}")
        m.d.comb += ext.eq(v.as_signed() if shape.signed else v.as_unsigned())
        return ext

    av, bv = operand(a, "A"), operand(b, "B")
    p = Signal(2 * MULT_WIDTH, name=f"{name}_p")
    reg_clk = "CLK0"  # the only clock the model (and this design) uses
    ports = dict(
        p_REG_INPUTA_CLK=reg_clk if reg_in else "NONE", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
        p_REG_INPUTB_CLK=reg_clk if reg_in else "NONE", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
        p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
        p_REG_OUTPUT_CLK=reg_clk if reg_out else "NONE", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
        p_RESETMODE="SYNC", p_GSR="DISABLED", p_MULT_BYPASS="DISABLED", p_CLK0_DIV="ENABLED",
        i_SIGNEDA=int(signed), i_SIGNEDB=int(signed), i_SOURCEA=0, i_SOURCEB=0,
        i_CLK0=ClockSignal("sync"), i_CE0=1, i_RST0=0,
    )
    for k in range(MULT_WIDTH):
        ports[f"i_A{k}"] = av[k]
        ports[f"i_B{k}"] = bv[k]
    for k in range(2 * MULT_WIDTH):
        ports[f"o_P{k}"] = p[k]
    m.submodules[name] = Instance("MULT18X18D", **ports)
    return p


def reg_copy(m, name: str, d, platform) -> Signal:
    """A 1-bit register named ``name`` loading ``d`` every cycle (no reset; it follows ``d`` a
    cycle behind), kept apart from other copies of the same value on the ECP5 target.

    Copies of a control signal, one next to each of its consumers, cut its fan-out across the
    die; but Yosys' ``opt_merge`` merges flip-flops with the same input back into one (a keep
    attribute on the wire does not stop it). On the ECP5 target each copy is therefore a
    TRELLIS_FF instance, which no optimisation merges; elsewhere a plain register.
    """
    q = Signal(name=name)
    if ecp5_dsp(platform) is None:
        m.d.sync += q.eq(d)
    else:
        m.submodules[f"{name}_ff"] = Instance(
            "TRELLIS_FF", p_GSR="DISABLED", p_CEMUX="1", p_CLKMUX="CLK", p_LSRMUX="LSR", p_REGSET="RESET",
            p_SRMODE="LSR_OVER_CE", i_CLK=ClockSignal("sync"), i_LSR=0, i_CE=1, i_DI=d, o_Q=q)
    return q


# --------------------------------------------------------------------------------------------
# Simulation models


def primitive_models() -> str:
    """Verilog models of every ECP5 primitive the ECP5 netlist instantiates."""
    return mult18x18d_model() + "\n" + trellis_ff_model()


def trellis_ff_model() -> str:
    """Verilog model of the TRELLIS_FF subset :func:`reg_copy` instantiates (a D flip-flop on
    CLK, no clock enable, no set or reset: ``CEMUX "1"``, ``LSR`` tied to 0, GSR off). Anything
    else stops the simulation with a message."""
    return """// Simulation model of the ECP5 TRELLIS_FF (Yosys/nextpnr's slice flip-flop): the subset
// hw/gateware/dsp.py (reg_copy) instantiates. Generated by hw/gateware/dsp.py (trellis_ff_model).
module TRELLIS_FF (CLK, LSR, CE, DI, M, Q);
  parameter GSR = "ENABLED";
  parameter CEMUX = "1";
  parameter CLKMUX = "CLK";
  parameter LSRMUX = "LSR";
  parameter SRMODE = "LSR_OVER_CE";
  parameter REGSET = "RESET";
  input CLK, LSR, CE, DI, M;
  output reg Q = 1'b0;
  initial begin
    if (CEMUX != "1" || CLKMUX != "CLK" || LSRMUX != "LSR" || GSR != "DISABLED") begin
      $display("TRELLIS_FF model (%m): configuration outside the modelled subset %s",
               "(CEMUX 1, CLKMUX CLK, LSRMUX LSR, GSR DISABLED)");
      $finish;
    end
  end
  always @(posedge CLK) begin
    if (LSR !== 1'b0) begin
      $display("TRELLIS_FF model (%m): LSR (set/reset) is not modelled");
      $finish;
    end
    Q <= DI;
  end
endmodule
"""


def mult18x18d_model() -> str:
    """Verilog model of the MULT18X18D subset that :func:`mult18x18d` instantiates, for
    simulating the ECP5 netlist (Icarus -g2005 and Verilator).

    From Lattice's description of the sysDSP block (TN1267, "ECP5 and ECP5-5G sysDSP Usage
    Guide"): ``P = A * B``, each operand two's complement when its SIGNED input is 1 and unsigned
    otherwise; the input registers (A, B) and the output register each take their clock, clock
    enable and reset from the CLKn/CEn/RSTn chosen by their REG_*_CLK/_CE/_RST parameters
    ("NONE": no register); with RESETMODE "SYNC" a reset clears the register at the clock edge
    and takes priority over the enable. Outside the subset (the C input, the pipeline register,
    cascades, a register on a clock other than CLK0, asynchronous reset) the model stops the
    simulation with a message instead of guessing.
    """
    a_ports = ", ".join(f"A{k}" for k in range(MULT_WIDTH))
    b_ports = ", ".join(f"B{k}" for k in range(MULT_WIDTH))
    p_ports = ", ".join(f"P{k}" for k in range(2 * MULT_WIDTH))
    a_cat = ", ".join(f"A{k}" for k in reversed(range(MULT_WIDTH)))
    b_cat = ", ".join(f"B{k}" for k in reversed(range(MULT_WIDTH)))
    p_assign = "\n".join(f"  assign P{k} = p_out[{k}];" for k in range(2 * MULT_WIDTH))
    return f"""// Simulation model of the Lattice ECP5 MULT18X18D: the subset hw/gateware/dsp.py instantiates.
// Generated by hw/gateware/dsp.py (mult18x18d_model); see its docstring for the semantics.
module MULT18X18D ({a_ports}, {b_ports}, SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3, {p_ports});
  parameter REG_INPUTA_CLK = "NONE";
  parameter REG_INPUTA_CE = "CE0";
  parameter REG_INPUTA_RST = "RST0";
  parameter REG_INPUTB_CLK = "NONE";
  parameter REG_INPUTB_CE = "CE0";
  parameter REG_INPUTB_RST = "RST0";
  parameter REG_INPUTC_CLK = "NONE";
  parameter REG_PIPELINE_CLK = "NONE";
  parameter REG_OUTPUT_CLK = "NONE";
  parameter REG_OUTPUT_CE = "CE0";
  parameter REG_OUTPUT_RST = "RST0";
  parameter RESETMODE = "SYNC";
  parameter GSR = "ENABLED";
  parameter MULT_BYPASS = "DISABLED";
  parameter CLK0_DIV = "ENABLED";
  input {a_ports};
  input {b_ports};
  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB;
  input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3;
  output {p_ports};

  wire [17:0] a_in = {{{a_cat}}};
  wire [17:0] b_in = {{{b_cat}}};
  wire [3:0] ce = {{CE3, CE2, CE1, CE0}};
  wire [3:0] rst = {{RST3, RST2, RST1, RST0}};

  function integer sel;  // "CE2" / "RST1" -> 2 / 1
    input [8*4-1:0] name;
    sel = name[7:0] - "0";
  endfunction

  initial begin
    if (REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0"
        || REG_INPUTB_CLK != "NONE" && REG_INPUTB_CLK != "CLK0"
        || REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0" || REG_INPUTC_CLK != "NONE"
        || REG_PIPELINE_CLK != "NONE" || RESETMODE != "SYNC" || MULT_BYPASS != "DISABLED") begin
      $display("MULT18X18D model (%m): configuration outside the modelled subset %s",
               "(registers on CLK0 only, no C input, no pipeline register, RESETMODE SYNC, no bypass)");
      $finish;
    end
  end
  always @(posedge CLK0)
    if (SOURCEA === 1'b1 || SOURCEB === 1'b1) begin
      $display("MULT18X18D model (%m): SOURCEA/SOURCEB (the cascade inputs) are not modelled");
      $finish;
    end

  reg [17:0] a_r, b_r;
  reg sa_r, sb_r;
  always @(posedge CLK0) begin
    if (rst[sel(REG_INPUTA_RST)]) begin a_r <= 18'd0; sa_r <= 1'b0; end
    else if (ce[sel(REG_INPUTA_CE)]) begin a_r <= a_in; sa_r <= SIGNEDA; end
    if (rst[sel(REG_INPUTB_RST)]) begin b_r <= 18'd0; sb_r <= 1'b0; end
    else if (ce[sel(REG_INPUTB_CE)]) begin b_r <= b_in; sb_r <= SIGNEDB; end
  end
  wire [17:0] a = REG_INPUTA_CLK == "NONE" ? a_in : a_r;
  wire [17:0] b = REG_INPUTB_CLK == "NONE" ? b_in : b_r;
  wire sa = REG_INPUTA_CLK == "NONE" ? SIGNEDA : sa_r;
  wire sb = REG_INPUTB_CLK == "NONE" ? SIGNEDB : sb_r;
  wire signed [18:0] a_x = {{sa & a[17], a}};
  wire signed [18:0] b_x = {{sb & b[17], b}};
  wire signed [37:0] prod = a_x * b_x;
  wire [35:0] p_comb = prod[35:0];

  reg [35:0] p_r;
  always @(posedge CLK0) begin
    if (rst[sel(REG_OUTPUT_RST)]) p_r <= 36'd0;
    else if (ce[sel(REG_OUTPUT_CE)]) p_r <= p_comb;
  end
  wire [35:0] p_out = REG_OUTPUT_CLK == "NONE" ? p_comb : p_r;
{p_assign}
endmodule
"""
