"""`python -m benchbench.validate_worker CONFIG_JSON`: one process of `benchbench validate`.

Runs the rounds of benchbench.measure.validate.worker_rounds and answers in JSON lines on stdout (one
`row` per op and round, then `done`, or an `error` line).
"""

from __future__ import annotations

import json
import sys
import traceback


def main(argv: list[str]) -> int:
    from benchbench.measure.validate import worker_rounds

    def emit(msg: dict) -> None:
        print(json.dumps(msg), flush=True)

    try:
        worker_rounds(json.loads(argv[0]), emit)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as data
        traceback.print_exc()
        emit({"event": "error", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
        return 1
    emit({"event": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
