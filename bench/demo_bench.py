"""Benchmark: the demo, end to end on the embedded default model, from a cold model cache.

Prints wall time per stage and in total (model conversion included) and the accuracy table, and
checks them against the foundation targets: <= 15 minutes; tuned answer-contained >= 60% with the
base model near 0%. Usage: python bench/demo_bench.py [--keep DIR] [key=value ...]"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="write the demo here instead of a temporary folder")
    parser.add_argument("--warm", action="store_true", help="reuse the model cache (skip timing the conversion)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="steep-bench-"))
    if not args.warm:
        os.environ["STEEP_CACHE"] = str(work / "cache")  # cold: the GGUF conversion is timed too
    from steep.cli import main as steep_main  # after STEEP_CACHE is set

    started = time.time()
    code = steep_main(["demo", "--dir", str(work / "demo"), *args.overrides])
    total = time.time() - started
    if code:
        return code
    run = work / "demo" / "runs" / "demo"
    print("\n## stage wall times")
    for stage in ("ingest", "synth", "curate", "train", "eval"):
        done = json.loads((run / stage / "done.json").read_text())
        print(f"{stage:8s} {done.get('seconds', 0):7.1f} s")
    print(f"{'total':8s} {total:7.1f} s (includes model conversion: {'no' if args.warm else 'yes'})")
    results = json.loads((run / "eval" / "results.json").read_text())
    print("\n## answer-contained by question kind")
    for kind in results["tuned"].get("by_kind", {}):
        print(f"{kind:12s} base {results['base']['by_kind'][kind]['contained']:6.1%}  tuned {results['tuned']['by_kind'][kind]['contained']:6.1%}")
    targets = {
        "demo <= 15 min": total <= 15 * 60,
        "tuned answer-contained >= 60%": results["tuned"]["contained"] >= 0.60,
        "base answer-contained <= 5%": results["base"]["contained"] <= 0.05,
    }
    print("\n## targets")
    for name, met in targets.items():
        print(f"{'met ' if met else 'MISSED'} {name}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
