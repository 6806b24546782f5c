"""Build papers.db from the dumps in dumps/.

    python build_db.py                          # dumps/ -> papers.db
    python build_db.py --dumps DIR --out FILE   # any folder -> any file

The stages live in the neuroai_papers package: parse, dedupe, enrich, write.
"""

import signal
import sys

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stopped_while_starting(signum, frame):
    """Ctrl-C or SIGTERM while Python imports the build (half a second): nothing has begun.
    Once it has, the build takes the signals over (neuroai_papers/stopping.py)."""
    print("interrupted: nothing written", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, stopped_while_starting)
    from neuroai_papers.build import main

    status = main()
    for stop_signal in STOP_SIGNALS:  # the build is over and said how: a stop would only
        signal.signal(stop_signal, signal.SIG_IGN)  # cut Python's exit short, with its own code
    sys.exit(status)
