"""The command-line runner every entry point shares (docs/data-contracts.md, section
"Command-line conventions"): logging to stderr, user errors as one line naming the
file/record and the reason with exit status 2 and no traceback, ``--json`` output as one
sorted line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable

from common.errors import UserError


def print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False, sort_keys=True), flush=True)


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a CLI ``main``: logging to stderr, user errors as one line and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        code = 130
    sys.exit(code)
