"""The package seams hold: the host and the contract load no HDL, and sim/ is a package."""
import subprocess
import sys

import pytest

HOST_MODULES = ["hw.contract.params", "hw.contract.regmap", "hw.contract.schedule", "hw.contract.program",
                "sw.driver", "sw.energy", "sw.measure", "sw.model_device", "sw.report", "sw.rtl", "sw.host",
                "sim.runner"]


@pytest.mark.parametrize("module", HOST_MODULES)
def test_host_side_imports_no_amaranth(module):
    # A fresh interpreter: this process has Amaranth loaded already by other tests.
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('amaranth', 'torch', 'cocotb')"
            " or m.startswith('hw.gateware') or m.startswith('hw.flow')); print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing {module} loads {out}"

