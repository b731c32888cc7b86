"""``tap-calven-sandbox``: run the Calven emulator standalone (demo, manual tests, benchmarks)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from tap_calven.sandbox.faults import FAULT_KINDS, parse_fault_spec
from tap_calven.sandbox.server import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    MAX_SPAN_DAYS,
    Sandbox,
)

FAULT_HELP = f"""\
fault grammar (--faults):
  SPEC  := FAULT [";" FAULT]...
  FAULT := KIND [":" KEY "=" VALUE ["," KEY "=" VALUE]...]
  KIND  := {" | ".join(FAULT_KINDS)}
  keys  : count=N (default 1; "inf" = every matching request), path=PREFIX (only requests
          whose path starts with PREFIX, token endpoints included), retry_after=SECONDS
          (429), status=CODE (5xx, default 503), seconds=S (slow: delay before answering)
  Faults are consumed in the order given. Example:
    --faults '429:count=2,retry_after=1;5xx:count=3,path=/v1/analytics/presence'
"""


def _day(text: str) -> dt.date:
    """A `--today` value; argparse prints the error as one usage line."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _positive(text: str) -> int:
    """A whole number of at least 1; argparse prints the error as one usage line."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line (also what ``--help`` documents)."""
    p = argparse.ArgumentParser(
        prog="tap-calven-sandbox",
        description=(
            "A local emulator of Calven's Warehouse API serving a deterministic synthetic "
            "tenant. Prints 'tap-calven-sandbox listening on URL' once serving; stop it "
            "with SIGTERM or Ctrl-C."
        ),
        epilog=FAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 = any free port (default 0)")
    p.add_argument("--seed", type=int, default=1, help="tenant seed (default 1)")
    p.add_argument("--users", type=int, default=40, help="number of users (default 40)")
    p.add_argument("--locations", type=int, default=3, help="number of offices (default 3)")
    p.add_argument(
        "--past-days", type=int, default=60, help="days of history before today (default 60)"
    )
    p.add_argument(
        "--future-days", type=int, default=21, help="days of plans after today (default 21)"
    )
    p.add_argument(
        "--today",
        type=_day,
        default=None,
        help="the UTC day the tenant is anchored on, YYYY-MM-DD (default: the clock's today)",
    )
    p.add_argument(
        "--api-key", default=DEFAULT_API_KEY, help=f"API key id (default {DEFAULT_API_KEY})"
    )
    p.add_argument(
        "--api-secret",
        default=DEFAULT_API_SECRET,
        help=f"API key secret (default {DEFAULT_API_SECRET})",
    )
    p.add_argument(
        "--latency-ms", type=float, default=0, help="delay before every answer (default 0)"
    )
    p.add_argument(
        "--token-lifetime", type=float, default=600, help="token lifetime, seconds (default 600)"
    )
    p.add_argument(
        "--drift",
        action="store_true",
        help="add unexpected fields, null/drop optional ones, send some values as another type",
    )
    p.add_argument(
        "--move",
        action="append",
        default=[],
        metavar="STREAM=PATH",
        help="serve STREAM at PATH instead of its documented path (which then answers 404); "
        "repeatable, e.g. --move desks=/v2/places",
    )
    p.add_argument(
        "--max-window-days",
        type=_positive,
        default=MAX_SPAN_DAYS,
        help=f"longest startDate..endDate span served, inclusive (default {MAX_SPAN_DAYS}); "
        "a longer windowed request gets HTTP 400, to emulate a tenant with a smaller limit",
    )
    p.add_argument("--faults", default="", help="faults to inject (grammar below)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGTERM/SIGINT."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        faults = parse_fault_spec(args.faults)
    except ValueError as exc:
        print(f"tap-calven-sandbox: --faults: {exc}", file=sys.stderr)
        return 2
    moved = dict(move.partition("=")[::2] for move in args.move)
    if any(not path.startswith("/") for path in moved.values()):
        print("tap-calven-sandbox: --move takes STREAM=/path", file=sys.stderr)
        return 2
    try:
        sandbox = Sandbox(
            seed=args.seed,
            users=args.users,
            locations=args.locations,
            past_days=args.past_days,
            future_days=args.future_days,
            today=args.today,
            api_key=args.api_key,
            api_secret=args.api_secret,
            latency_ms=args.latency_ms,
            drift=args.drift,
            token_lifetime=args.token_lifetime,
            max_window_days=args.max_window_days,
            host=args.host,
            port=args.port,
            moved_paths=moved,
        )
    except ValueError as exc:
        print(f"tap-calven-sandbox: {exc}", file=sys.stderr)
        return 2
    for fault in faults:
        sandbox.add_fault(fault.kind, path=fault.path, count=fault.count, **fault.params)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sandbox.start()
    except OSError as exc:
        print(
            f"tap-calven-sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 1
    print(f"tap-calven-sandbox listening on {sandbox.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    logging.getLogger("tap_calven.sandbox").info("tap-calven-sandbox stopped")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
