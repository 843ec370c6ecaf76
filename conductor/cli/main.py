"""Entry point of the `conductor` console script."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    del argv
    print("conductor: no commands yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
