"""The Meltano Hub definition (hub/) and meltano.yml against Hub's schemas and the tap itself.

Hub's JSON schemas are vendored in `hub/schema/` (its README says where from and under which
license). They are required: a missing file fails the test, never skips it.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tap_calven.streams import STREAM_TYPES
from tap_calven.tap import TapCalven

REPO = Path(__file__).resolve().parents[1]
HUB_SCHEMA_DIR = REPO / "hub" / "schema"
HUB_FILE = REPO / "hub" / "extractors" / "tap-calven" / "calven.yml"
MELTANO_YML = REPO / "meltano.yml"

STREAMS = tuple(cls.name for cls in STREAM_TYPES)
# JSON schema type of a setting -> the Meltano `kind` it must have.
KIND_OF_TYPE = {
    "string": "string",
    "integer": "integer",
    "number": "decimal",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}
DATE_SETTINGS = {"start_date", "end_date"}
# Defaults that depend on the installed version, so no definition file repeats them.
VERSIONED_DEFAULTS = {"user_agent"}


@cache
def about() -> dict[str, Any]:
    """What `tap-calven --about --format=json` prints: the source of truth for Hub."""
    exe = Path(sys.executable).with_name("tap-calven")
    out = subprocess.run(
        [str(exe), "--about", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    info: dict[str, Any] = json.loads(out)
    return info


def load_yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def hub_validator() -> Draft7Validator:
    """A draft-07 validator for Hub's extractor schema, refs resolved by file path."""
    if not (HUB_SCHEMA_DIR / "plugin_definitions" / "extractors.schema.json").is_file():
        pytest.fail(
            f"Meltano Hub schemas not found at {HUB_SCHEMA_DIR} (expected the vendored copy, "
            "hub/schema/plugin_definitions/extractors.schema.json)"
        )

    def retrieve(uri: str) -> Resource[Any]:
        if not uri.startswith("file://"):
            raise LookupError(uri)
        contents = json.loads(Path(uri.removeprefix("file://")).read_text(encoding="utf-8"))
        # The files' $id values do not match their folders; without them every $ref resolves
        # relative to the file it is written in.
        contents.pop("$id", None)
        return Resource.from_contents(contents, default_specification=DRAFT7)

    entry = (HUB_SCHEMA_DIR / "plugin_definitions" / "extractors.schema.json").as_uri()
    registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    return Draft7Validator({"$ref": entry}, registry=registry)


def hub_errors(definition: dict[str, Any]) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in hub_validator().iter_errors(definition)
    )


def meltano_extractor() -> dict[str, Any]:
    project = load_yaml(MELTANO_YML)
    (tap,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-calven"]
    assert isinstance(tap, dict)
    return tap


def check_settings(settings: list[dict[str, Any]], where: str) -> None:
    """Every setting of the tap, with the kind, enum, default and sensitivity it has there."""
    schema = about()["settings"]
    properties: dict[str, Any] = schema["properties"]
    by_name = {s["name"]: s for s in settings}
    assert len(by_name) == len(settings), f"{where}: a setting is listed twice"
    assert set(by_name) == set(properties), (
        f"{where}: missing {sorted(set(properties) - set(by_name))}, "
        f"unknown {sorted(set(by_name) - set(properties))}"
    )
    for name, prop in properties.items():
        setting = by_name[name]
        types = [t for t in prop["type"] if t != "null"]
        assert len(types) == 1, (name, types)
        if "enum" in prop:
            expected_kind = "options"
        elif name in DATE_SETTINGS:
            expected_kind = "date_iso8601"
        else:
            expected_kind = KIND_OF_TYPE[types[0]]
        assert setting.get("kind") == expected_kind, (where, name, setting.get("kind"))
        assert str(setting.get("label", "")).strip(), (where, name, "label")
        assert str(setting.get("description", "")).strip(), (where, name, "description")
        assert setting.get("sensitive", False) is bool(prop.get("secret", False)), (
            where,
            name,
            "sensitive",
        )
        if "enum" in prop:
            values = [o["value"] for o in setting["options"]]
            assert values == [v for v in prop["enum"] if v is not None], (where, name)
        if "value" in setting:
            assert name not in VERSIONED_DEFAULTS, (where, name)
            assert setting["value"] == prop.get("default"), (where, name, setting["value"])
        elif prop.get("default") is not None and name not in VERSIONED_DEFAULTS:
            pytest.fail(f"{where}: setting {name} lacks its default {prop['default']!r}")
    sensitive = sorted(s["name"] for s in settings if s.get("sensitive"))
    assert sensitive == ["api_secret"], (where, sensitive)


def test_hub_definition_is_valid_for_hub() -> None:
    definition = load_yaml(HUB_FILE)
    assert hub_errors(definition) == []


def test_hub_validator_rejects_a_broken_definition() -> None:
    """The schemas really are applied, $refs included (a vacuous validator would pass all)."""
    broken = copy.deepcopy(load_yaml(HUB_FILE))
    del broken["quality"]
    broken["capabilities"].append("teleport")
    broken["settings"][0]["kind"] = "bogus"
    broken["settings"][1]["colour"] = "red"
    errors = hub_errors(broken)
    joined = "\n".join(errors)
    assert "'quality' is a required property" in joined
    assert "'teleport' is not one of" in joined
    assert "'bogus' is not one of" in joined
    assert "'colour' was unexpected" in joined


def test_hub_definition_matches_the_tap() -> None:
    definition = load_yaml(HUB_FILE)
    info = about()
    assert definition["name"] == "tap-calven"
    assert definition["namespace"] == "tap_calven"
    assert definition["executable"] == "tap-calven"
    assert definition["variant"] == HUB_FILE.stem
    assert HUB_FILE.parent.name == definition["name"]
    assert sorted(definition["capabilities"]) == sorted(info["capabilities"])
    assert "meltano_sdk" in definition["keywords"]
    assert definition["supported_python_versions"] == info["supported_python_versions"]
    assert definition["settings_group_validation"] == [info["settings"]["required"]]
    check_settings(definition["settings"], "hub")


def test_tap_config_schema_is_all_in_hub() -> None:
    """The tap's own settings (not only the SDK's built-ins) reach Hub and meltano.yml."""
    own = set(TapCalven.config_jsonschema["properties"])
    assert {"api_key", "api_secret", "start_date", "location_ids"} <= own
    assert own <= {s["name"] for s in load_yaml(HUB_FILE)["settings"]}
    assert own <= {s["name"] for s in meltano_extractor()["settings"]}
    secrets = {n for n, p in TapCalven.config_jsonschema["properties"].items() if p.get("secret")}
    assert secrets == {"api_secret"}


def test_meltano_yml_matches_the_tap_and_hub() -> None:
    tap = meltano_extractor()
    info = about()
    assert tap["namespace"] == "tap_calven"
    assert tap["pip_url"] == "-e ."
    assert tap["executable"] == "tap-calven"
    assert sorted(tap["capabilities"]) == sorted(info["capabilities"])
    assert tap["settings_group_validation"] == [info["settings"]["required"]]
    check_settings(tap["settings"], "meltano.yml")
    # Same settings, word for word, in both files.
    assert tap["settings"] == load_yaml(HUB_FILE)["settings"]
    assert sorted(tap["select"]) == sorted(f"{s}.*" for s in STREAMS)


def test_meltano_yml_project() -> None:
    project = load_yaml(MELTANO_YML)
    assert project["venv"]["backend"] == "uv"
    assert project["send_anonymous_usage_stats"] is False
    loaders = {p["name"]: p for p in project["plugins"]["loaders"]}
    assert set(loaders) == {"target-duckdb", "target-postgres", "target-jsonl"}
    assert loaders["target-postgres"]["variant"] == "meltanolabs"
    assert loaders["target-postgres"]["pip_url"].startswith("meltanolabs-target-postgres==")
    assert loaders["target-postgres"]["config"]["load_method"] == "upsert"
    for loader in loaders.values():
        assert "==" in loader["pip_url"], f"{loader['name']} is not pinned"
    for plugin in [*project["plugins"]["extractors"], *loaders.values()]:
        for setting in plugin.get("settings", []):
            assert setting.get("kind"), (plugin["name"], setting["name"])
            assert setting.get("label"), (plugin["name"], setting["name"])
            assert setting.get("description"), (plugin["name"], setting["name"])
    envs = {e["name"]: e for e in project["environments"]}
    (sandbox_tap,) = envs["sandbox"]["config"]["plugins"]["extractors"]
    assert sandbox_tap["name"] == "tap-calven"
    assert sandbox_tap["config"]["api_url"].startswith("http://127.0.0.1:")
    assert sandbox_tap["config"]["api_key"] == "sandbox-key"
    # Real credentials never live in meltano.yml: only the sandbox's public ones.
    for env in envs.values():
        for tap in env.get("config", {}).get("plugins", {}).get("extractors", []):
            secret = tap.get("config", {}).get("api_secret")
            assert secret in (None, "sandbox-secret"), env["name"]
    assert "api_secret" not in meltano_extractor().get("config", {})
