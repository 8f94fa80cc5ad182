"""python -m labgen, and the labgen command: an interrupt while Python is still importing
labgen's modules ends with one line too, not a traceback."""

import sys


def run() -> int:
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("labgen: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
