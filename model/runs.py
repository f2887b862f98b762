"""Training runs side by side: the markdown tables docs/training.md shows, from the runs' own
report.json files (what `python -m model.train` writes into --out).

    python -m model.runs build/un0 build/sp0 build/sw0 [--individual build/ind0]
    python -m model.runs build/un0 build/un1 build/sp0 build/sp1 --seeds    # mean ± spread per scheme
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .cli import OneLineParser


def _load(folder: str) -> dict:
    path = Path(folder) / "report.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a model.train report ({e})") from None


def _name(r: dict) -> str:
    return f"{r.get('subnets') or r['scheme']}, seed {r['seed']}"


def table(runs: list[dict], individual: dict | None = None) -> str:
    """Per profile (rows, by stage) the int8 test accuracy of each run (validation in brackets),
    and the individually trained dense network's where there is one."""
    keys = list(runs[0]["profiles"])
    head = " | ".join(_name(r) for r in runs) + (" | individually trained" if individual else "")
    out = [f"| profile | {head} |", "| --- |" + " ---: |" * (len(runs) + bool(individual))]
    for k in keys:
        cells = [f"{100 * r['profiles'][k]['int8_test']:.2f} ({100 * r['profiles'][k]['int8_val']:.2f})"
                 for r in runs]
        if individual:
            ind = individual["profiles"].get(k)
            cells.append(f"{100 * ind['int8_test']:.2f} ({100 * ind['int8_val']:.2f})" if ind else "–")
        bold = "**" if len(set(k.split(","))) == 1 else ""
        out.append(f"| {bold}{k}{bold} | " + " | ".join(cells) + " |")
    out.append("| training time (s) | " + " | ".join(f"{r['train_seconds']:,.0f}" for r in runs)
               + (f" | {sum(individual['train_seconds'].values()):,.0f}" if individual else "") + " |")
    return "\n".join(out) + "\n"


def seeds_table(runs: list[dict]) -> str:
    """Per profile and scheme: the int8 test accuracy's mean over the scheme's seeds and its
    spread (max - min), and the training time's mean. Schemes in their first run's order."""
    schemes: dict[str, list[dict]] = {}
    for r in runs:
        schemes.setdefault(r.get("subnets") or r["scheme"], []).append(r)
    keys = list(runs[0]["profiles"])
    head = " | ".join(f"{name} ({len(rs)} seeds)" for name, rs in schemes.items())
    out = [f"| profile | {head} |", "| --- |" + " ---: |" * len(schemes)]
    for k in keys:
        cells = []
        for rs in schemes.values():
            acc = [100 * r["profiles"][k]["int8_test"] for r in rs]
            cells.append(f"{sum(acc) / len(acc):.2f} ± {(max(acc) - min(acc)) / 2:.2f}")
        bold = "**" if len(set(k.split(","))) == 1 else ""
        out.append(f"| {bold}{k}{bold} | " + " | ".join(cells) + " |")
    out.append("| training time (s) | " + " | ".join(
        f"{sum(r['train_seconds'] for r in rs) / len(rs):,.0f}" for rs in schemes.values()) + " |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m model.runs", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="model.train output folders (shared-network schemes)")
    ap.add_argument("--individual", default=None, help="a --scheme independent --profile ... output folder")
    ap.add_argument("--seeds", action="store_true",
                    help="one column per scheme: mean ± half the spread over its runs' seeds")
    args = ap.parse_args(argv)
    try:
        runs = [_load(f) for f in args.runs]
        individual = _load(args.individual) if args.individual else None
        if any(r["scheme"] == "independent" for r in runs):
            raise ValueError("independent runs go after --individual")
    except (ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(seeds_table(runs) if args.seeds else table(runs, individual), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
