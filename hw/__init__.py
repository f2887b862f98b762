"""chanscale hardware, in three sub-packages along the seams of who uses them:

``hw.contract``  the hardware/software contract: array geometry (``params``), the register map
                 (``regmap``), the executable schedule and counter model (``schedule``) and the
                 mapping of an export onto the accelerator's memories (``program``). Plain Python
                 and NumPy, no Amaranth: ``sw/`` and ``sim/`` import only this.
``hw.gateware``  the Amaranth components: processing element, systolic array, requantizer,
                 sequencer, AXI4-Lite slave, the top-level ``Accelerator`` and the ECP5 DSP
                 primitives.
``hw.flow``      Verilog generation (``python -m hw.flow.gen``), synthesis and place-and-route
                 (``python -m hw.flow.synth``), static timing (``hw.flow.sta``), lint
                 (``hw.flow.lint``) and the plain MAC-grid baseline (``hw.flow.macgrid``).
"""
