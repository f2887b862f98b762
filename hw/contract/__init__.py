"""The hardware/software contract: what ``hw.gateware`` implements and ``sw/`` and ``sim/`` drive.
Imports no Amaranth (``tests/test_layering.py`` checks it), so the host runs without an HDL."""
