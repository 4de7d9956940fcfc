#!/usr/bin/env python3
"""The dependency rule of README "Code map": every folder includes only the folders below it.

Reads each source file's #include "..." lines and fails, naming file:line, on an include that the
table below does not allow. A folder may always include itself. Run by ctest as `layout.includes`.
"""
import pathlib
import re
import sys

# folder -> folders it may include (besides itself). Lower layers first.
ALLOWED = {
    "relay/core": set(),
    "conf": {"relay/core"},
    "relay/smtp": {"relay/core"},
    "auth": {"relay/core", "conf"},
    "relay/spool": {"relay/core", "relay/smtp"},
    "relay/intake": {"relay/core", "relay/smtp", "relay/spool", "conf", "auth"},
    "relay/delivery": {"relay/core", "relay/smtp", "relay/spool", "conf", "auth"},
    "relay/service": {"relay/core", "relay/smtp", "relay/spool", "conf", "auth",
                      "relay/intake", "relay/delivery"},
    "relay/cli": None,  # the top: anything
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(path: str) -> str | None:
    # The longest folder in the table that holds the path.
    best = None
    for folder in ALLOWED:
        if path.startswith(folder + "/") and (best is None or len(folder) > len(best)):
            best = folder
    return best


def main(root: pathlib.Path) -> int:
    problems = []
    sources = [p for top in ("relay", "auth", "conf") for p in sorted((root / top).rglob("*"))
               if p.suffix in (".cpp", ".hpp")]
    for path in sources:
        rel = path.relative_to(root).as_posix()
        own = folder_of(rel)
        if own is None:
            problems.append(f"{rel}:1: not in any folder of the layout; place it in one (README \"Code map\")")
            continue
        allowed = ALLOWED[own]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            target = folder_of(match.group(1))
            if target is None or target == own or allowed is None or target in allowed:
                continue
            problems.append(f"{rel}:{number}: {own}/ may not include {match.group(1)} "
                            f"(allowed: {', '.join(sorted(allowed)) or 'nothing of the project'})")
    for problem in problems:
        print(problem)
    print(f"checked {len(sources)} files: {len(problems)} forbidden include(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parents[2])))
