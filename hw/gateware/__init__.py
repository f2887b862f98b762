"""The accelerator's Amaranth components; ``hw.gateware.accel.Accelerator`` is the top level.
The design (dataflow, timing, memories) is in ``docs/design.md``."""
