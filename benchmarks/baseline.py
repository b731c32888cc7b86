"""The raw baseline of B1: the least a Python program must do to copy a windowed stream.

It makes the tap's requests one after another with `requests` (HMAC token, 30-day
windows), parses each body whole with `json`, and writes one Singer RECORD line per
record with `json.dumps` (plus a STATE line per window), with none of the SDK's work.
The tap's records/s are reported as a ratio of this script's.

    python -m benchmarks.baseline --api-url URL --stream bookings_attendance \
        --start 2024-01-01 --end 2024-03-30 > /dev/null
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import sys
import time
from collections.abc import Sequence

import requests

PATHS = {
    "bookings_attendance": "/v1/analytics/user-booking-attendance",
    "presence": "/v1/analytics/presence",
    "user_actions_log": "/v1/analytics/change-log/user",
}


def token(session: requests.Session, api_url: str, api_key: str, api_secret: str) -> str:
    """One bearer token from POST /v1/auth, signed as the tap signs it."""
    stamp = int(time.time())
    digest = hmac.new(api_secret.encode(), f"{api_key}{stamp}".encode(), hashlib.sha256)
    body = {"apiKey": api_key, "timestamp": stamp, "hash": digest.hexdigest()}
    response = session.post(f"{api_url}/v1/auth", json=body, timeout=300)
    response.raise_for_status()
    return str(response.json()["token"])


def main(argv: Sequence[str] | None = None) -> int:
    """Copy one stream to stdout; print the record count to stderr."""
    parser = argparse.ArgumentParser(prog="benchmarks.baseline")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--api-key", default="sandbox-key")
    parser.add_argument("--api-secret", default="sandbox-secret")
    parser.add_argument("--stream", default="bookings_attendance", choices=sorted(PATHS))
    parser.add_argument("--start", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--end", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--window-days", type=int, default=30)
    args = parser.parse_args(argv)

    session = requests.Session()
    headers = {
        "Authorization": "Bearer " + token(session, args.api_url, args.api_key, args.api_secret)
    }
    out = sys.stdout
    count = 0
    first: dt.date = args.start
    while first <= args.end:
        last = min(first + dt.timedelta(days=args.window_days - 1), args.end)
        params = {"startDate": first.isoformat(), "endDate": last.isoformat()}
        response = session.get(
            args.api_url + PATHS[args.stream], params=params, headers=headers, timeout=300
        )
        response.raise_for_status()
        extracted = dt.datetime.now(dt.timezone.utc).isoformat()
        for record in json.loads(response.content):
            message = {
                "type": "RECORD",
                "stream": args.stream,
                "record": record,
                "time_extracted": extracted,
            }
            out.write(json.dumps(message) + "\n")
            count += 1
        state = {"bookmarks": {args.stream: {"replication_key_value": last.isoformat()}}}
        out.write(json.dumps({"type": "STATE", "value": state}) + "\n")
        first = last + dt.timedelta(days=1)
    out.flush()
    print(f"records {count}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
