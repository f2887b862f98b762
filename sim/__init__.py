"""chanscale's RTL simulation: cocotb testbenches (``tb_*``), their pytest runners (``test_*``)
and ``sim.runner``, which sets up the simulators, builds them once per Verilog text and runs one
cocotb test (used by pytest and by the host's RTL backends, ``sw/rtl.py``)."""
