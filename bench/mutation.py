"""`make mutate`: mutmut on gateway/core, one module at a time, then the score per module.

    python -m bench.mutation                 # every core module, from a fresh mutants/ directory
    python -m bench.mutation signing routing # only these modules
    python -m bench.mutation --report        # print the scores of the last run without running anything

The score is killed / all mutants of the module, where a timeout counts as killed (the tests noticed) and a
mutant no test reaches counts as survived. Configuration (what is mutated, which tests run) is in
pyproject.toml under [tool.mutmut]; the accepted survivors are listed in docs/mutation.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

CORE = Path("gateway/core")
MUTANTS = Path("mutants")
KILLED = {1: "killed", 3: "killed", 36: "timeout", 37: "killed", 24: "timeout", -24: "timeout", 152: "timeout"}
MUTMUT = Path(sys.executable).with_name("mutmut")


def modules() -> list[str]:
    return sorted(path.stem for path in CORE.glob("*.py") if path.stem != "__init__")


def run(module: str) -> None:
    """One module's mutants; mutmut's own output goes to mutants/<module>.log (its tail is shown on failure)."""
    pattern = f"gateway.core.{module}.*"
    print(f"== mutmut run {pattern}", flush=True)
    MUTANTS.mkdir(exist_ok=True)
    log = MUTANTS / f"{module}.log"
    with log.open("wb") as out:
        done = subprocess.run([str(MUTMUT), "run", pattern], check=False, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        print(f"mutmut failed ({done.returncode}); the end of {log}:", file=sys.stderr)
        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)


def outcomes(module: str) -> dict[str, str]:
    meta = MUTANTS / CORE / f"{module}.py.meta"
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: _status(code) for name, code in codes.items()}


def _status(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in KILLED:
        return "killed"
    return "survived" if code == 0 else "no tests" if code in (5, 33) else f"exit {code}"


def report(names: list[str]) -> int:
    """Print one line per module and the survivors; the number of modules under 95%."""
    below = 0
    print(f"{'module':<14}{'mutants':>9}{'killed':>8}{'score':>8}")
    for module in names:
        found = outcomes(module)
        counts = Counter(found.values())
        total = len(found)
        score = 100.0 * counts["killed"] / total if total else 100.0
        below += score < 95.0
        print(f"{module:<14}{total:>9}{counts['killed']:>8}{score:>7.1f}%")
    for module in names:
        for name, status in sorted(outcomes(module).items()):
            if status != "killed":
                print(f"  {status}: {name}")
    return below


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="core modules to mutate (default: all)")
    parser.add_argument("--report", action="store_true", help="only print the scores of the last run")
    args = parser.parse_args(argv)
    names = args.modules or modules()
    unknown = sorted(set(names) - set(modules()))
    if unknown:
        parser.error(f"not a module of {CORE}: {', '.join(unknown)}")
    if not args.report:
        if not args.modules:
            shutil.rmtree(MUTANTS, ignore_errors=True)
        for module in names:
            run(module)
    return 1 if report(names) else 0


if __name__ == "__main__":
    raise SystemExit(main())
