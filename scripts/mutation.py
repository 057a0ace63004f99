"""`make mutation`: mutation-test the security-critical modules, and fail on an unreviewed survivor.

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) copies ``server`` and ``client_agent``
into ``mutants/``, mutates the function bodies of the listed modules and runs, for each mutant,
the unit tests that reach the mutated function. This script runs it from scratch (results cached
from an earlier run would not see a test that changed since), with two local rules:

* one more operator, **drop the check**: an ``if``'s condition becomes ``False``. mutmut's own
  operators flip a comparison (``!=`` to ``==``), which any test of the happy path catches; a
  dropped check is caught only by a test of the refusal, which is what the verifier and the
  entitlement rules must have (STYLE.md: "change one comparison or drop one check").
* the arguments of a ``raise`` are not mutated: they only word the exception's message (its type
  is not mutated either). Tests hold the error type and the fact a message names, not its prose.

Then every mutant that no test killed is looked up in ``tests/mutation-survivors.toml``, the
reviewed list of equivalent mutants (each with why). A survivor is matched by its function and its
diff, not its number, which shifts when the function changes. The run fails, printing the diff,
for any survivor not in the list; entries that no longer survive are reported as stale.

Usage: ``python scripts/mutation.py [--report]`` (``--report``: only read the last run's results).
"""

from __future__ import annotations

import shutil
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from mutmut.mutation import file_mutation, mutators

SURVIVORS = Path("tests/mutation-survivors.toml")
# mutmut's verdicts that mean some test failed (a timeout is a mutant that looped forever).
KILLED = {"killed", "timeout", "caught by type check"}


def drop_the_check(node: cst.If) -> Iterator[cst.If]:
    """``if x: ...`` becomes ``if False: ...`` (an ``elif``'s test, likewise)."""
    yield node.with_changes(test=cst.Name("False"))


def _skip_raise_arguments() -> None:
    visitor = file_mutation.MutationVisitor
    skip = visitor._skip_node_and_children

    def skip_raise(self: file_mutation.MutationVisitor, node: cst.CSTNode) -> bool:
        return isinstance(node, cst.Raise) or skip(self, node)

    visitor._skip_node_and_children = skip_raise  # type: ignore[method-assign]


def run_mutmut() -> None:
    # mutmut generates the mutants in forked processes, which inherit both changes.
    mutators.mutation_operators.append((cst.If, drop_the_check))
    _skip_raise_arguments()
    from mutmut.__main__ import cli  # sets the fork start method on import

    shutil.rmtree("mutants", ignore_errors=True)
    cli.main(["run"], standalone_mode=False)
    print()


@dataclass(frozen=True)
class Mutant:
    name: str
    module: str
    status: str
    diff: str  # the changed lines only, "-old" then "+new"

    @property
    def function(self) -> str:
        return self.name.rpartition("__mutmut_")[0]


def _changed_lines(diff: str) -> str:
    lines = diff.splitlines()[2:]  # past the ---/+++ header
    return "\n".join(line.rstrip() for line in lines if line[:1] in "-+")


def results() -> list[Mutant]:
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    found = []
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        for name, exit_code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[exit_code]
            diff = "" if status in KILLED else _changed_lines(get_diff_for_mutant(name, path=path))
            found.append(Mutant(name, str(path), status, diff))
    return found


def reviewed() -> list[dict[str, str]]:
    with SURVIVORS.open("rb") as f:
        entries: list[dict[str, str]] = tomllib.load(f).get("survivor", [])
    for entry in entries:
        entry["diff"] = "\n".join(line.rstrip() for line in entry["diff"].strip().splitlines())
    return entries


def report(mutants: Iterable[Mutant], entries: list[dict[str, str]]) -> int:
    listed = {(e["mutant"].rpartition("__mutmut_")[0], e["diff"]): e for e in entries}
    counts: dict[str, Counter[str]] = {}
    unreviewed: list[Mutant] = []
    used = set()
    for mutant in mutants:
        count = counts.setdefault(mutant.module, Counter())
        count["mutants"] += 1
        if mutant.status in KILLED:
            count["killed"] += 1
            continue
        key = (mutant.function, mutant.diff)
        if mutant.status == "survived" and key in listed:
            count["equivalent"] += 1
            used.add(key)
        else:
            count["unreviewed"] += 1
            unreviewed.append(mutant)

    print(f"{'module':34} {'mutants':>8} {'killed':>8} {'equivalent':>11} {'unreviewed':>11}")
    total: Counter[str] = Counter()
    for module, count in counts.items():
        total.update(count)
        print(
            f"{module:34} {count['mutants']:8} {count['killed']:8} {count['equivalent']:11} "
            f"{count['unreviewed']:11}"
        )
    print(
        f"{'total':34} {total['mutants']:8} {total['killed']:8} {total['equivalent']:11} "
        f"{total['unreviewed']:11}"
    )

    for key, entry in listed.items():
        if key not in used:
            print(f"\nstale entry in {SURVIVORS} (no longer survives): {entry['mutant']}")
    for mutant in unreviewed:
        print(f"\n{mutant.status}, not in {SURVIVORS}: {mutant.name}\n{mutant.diff}")
    if unreviewed:
        print(
            f"\n{len(unreviewed)} mutant(s) survived that are not reviewed: add or sharpen a test "
            f"that kills each, or, if it cannot change any behaviour, list it in {SURVIVORS}."
        )
        return 1
    return 0


def main(argv: list[str]) -> int:
    started = time.monotonic()
    if "--report" not in argv:
        run_mutmut()
    code = report(results(), reviewed())
    print(f"\n{time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
