"""Stream maps and schema flattening configured through Meltano, loaded by target-jsonl."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tap_calven.sandbox import Sandbox

from .conftest import Meltano, tap_env
from .helpers import run_id

pytestmark = pytest.mark.e2e


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    assert path.is_file(), f"target-jsonl wrote no {path.name}"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_stream_maps_and_flattening(meltano: Meltano, sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "jsonl"
    stream_maps = {
        # Pseudonymise: the address becomes its MD5; names (userName is the address) dropped.
        "users": {"email": "md5(email)", "firstName": None, "lastName": None, "userName": None},
        # A nested copy of the whole record, which flattening turns into `detail__*` columns.
        "locations": {"detail": "record"},
    }
    env = tap_env(
        sandbox,
        TAP_CALVEN_STREAM_MAPS=json.dumps(stream_maps),
        TAP_CALVEN_FLATTENING_ENABLED="true",
        TAP_CALVEN_FLATTENING_MAX_DEPTH="1",
        TAP_CALVEN__SELECT=json.dumps(["users.*", "locations.*"]),
        TARGET_JSONL_DESTINATION_PATH=str(out),
        TARGET_JSONL_DO_TIMESTAMP_FILE="false",
    )
    meltano(
        "--environment",
        "sandbox",
        "run",
        "--state-id-suffix",
        run_id(),
        "tap-calven",
        "target-jsonl",
        env=env,
    )
    assert sorted(p.name for p in out.iterdir()) == ["locations.jsonl", "users.jsonl"]

    served_users = {u["userId"]: u for u in sandbox.records("users")}
    users = read_jsonl(out / "users.jsonl")
    assert len(users) == len(served_users)
    for user in users:
        served = served_users[user["userId"]]
        assert not {"firstName", "lastName", "userName"} & set(user), user
        assert served["email"]
        assert user["email"] == hashlib.md5(served["email"].encode()).hexdigest()
        assert served["email"] not in json.dumps(user)
        kept = set(served) - {"email", "firstName", "lastName", "userName"}
        assert {k: user[k] for k in kept} == {k: served[k] for k in kept}

    served_locations = {loc["locationId"]: loc for loc in sandbox.records("locations")}
    locations = read_jsonl(out / "locations.jsonl")
    assert len(locations) == len(served_locations)
    for loc in locations:
        served = served_locations[loc["locationId"]]
        assert "detail" not in loc, "the nested object was not flattened"
        for name, value in served.items():
            assert loc[name] == value
            assert loc[f"detail__{name}"] == value
