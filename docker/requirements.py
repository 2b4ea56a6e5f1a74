"""Print the requirements of pyproject.toml, one a line, for the images' dependency layer.

    python requirements.py PYPROJECT [--only NAME] [--exclude NAME]... [--extra NAME]...

The Dockerfiles copy pyproject.toml alone and install what this prints before they copy the
source, so the dependency layer is rebuilt only when pyproject.toml changes. ``--only torch``
and ``--exclude torch`` split out the torch pin, which the CPU image installs from the PyTorch
CPU index; ``--extra gpu --exclude faiss-cpu`` is the CUDA image's set. Standard library only
(``tomllib``: Python 3.11+), since it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import sys

import tomllib

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def name_of(requirement: str) -> str:
    """The normalized project name of a PEP 508 requirement (PEP 503: ``Foo_Bar`` is
    ``foo-bar``)."""
    match = _NAME.match(requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(
    pyproject: dict,
    *,
    only: str | None = None,
    exclude: tuple[str, ...] = (),
    extras: tuple[str, ...] = (),
) -> list[str]:
    project = pyproject["project"]
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise KeyError(f"no extra {extra!r} (there are: {', '.join(sorted(optional))})")
        reqs += optional[extra]
    skip = {name_of(n) for n in exclude}
    picked = [r for r in reqs if name_of(r) not in skip]
    if only is not None:
        picked = [r for r in picked if name_of(r) == name_of(only)]
        if not picked:
            raise KeyError(f"{only} is not a requirement")
    return picked


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("pyproject", help="path of pyproject.toml")
    p.add_argument("--only", metavar="NAME", help="just this requirement")
    p.add_argument("--exclude", metavar="NAME", action="append", default=[], help="leave out")
    p.add_argument("--extra", metavar="NAME", action="append", default=[], help="add an extra")
    args = p.parse_args(argv)
    with open(args.pyproject, "rb") as f:
        data = tomllib.load(f)
    try:
        lines = requirements(
            data, only=args.only, exclude=tuple(args.exclude), extras=tuple(args.extra)
        )
    except (KeyError, ValueError) as e:
        print(f"requirements.py: {e.args[0]}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
