"""chanscale host software: the driver (``sw.driver``), the backends it runs on (the exact model,
``sw.model_device``; the RTL through cocotb, ``sw.rtl``), the measurement session
(``sw.measure``), the energy model (``sw.energy``), the reports (``sw.report``) and the CLI
``sw/host.py``. Imports no Amaranth: the register map and schedule come from ``hw.contract``."""
