"""The FPGA and tool flow: Verilog generation, Yosys + nextpnr synthesis reports, static timing
from nextpnr's SDF, Verilator lint, and the plain MAC-grid baseline design."""
