"""The SDK internals the tap uses (tap_calven/sdk_internals.py) still exist and behave.

If one of these fails after a singer-sdk upgrade, the message names the internal: fix its
use in the module the reason points at, or find the public API that now serves.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from tap_calven import sdk_internals
from tap_calven.sdk_internals import (
    PRIVATE_ATTRIBUTES,
    PRIVATE_CALLS,
    PRIVATE_HOOKS,
    StreamHooks,
    TapHooks,
    is_exclusive_boolean,
    merge_missing_config_jsonschema,
)
from tap_calven.tap import TapCalven

OURS = {"Stream": StreamHooks, "PluginBase": TapHooks}
PACKAGE = Path(sdk_internals.__file__).parent


def sdk_class(path: str) -> type:
    module, _, name = path.partition(":")
    found: type = getattr(importlib.import_module(module), name)
    return found


def assert_sdk_method(where: str, method: str, params: tuple[str, ...], why: str) -> None:
    """The SDK still has this method, with these parameters."""
    base = sdk_class(where)
    assert hasattr(base, method), f"singer-sdk no longer has {where}.{method} ({why})"
    names = tuple(inspect.signature(getattr(base, method)).parameters)
    assert names == params, f"singer-sdk changed {where}.{method}{names}, expected {params}"


@pytest.mark.parametrize(("where", "method", "params", "why"), PRIVATE_HOOKS, ids=lambda v: v)
def test_each_private_hook_we_override_is_still_there(
    where: str, method: str, params: tuple[str, ...], why: str
) -> None:
    assert_sdk_method(where, method, params, why)
    ours = OURS[where.rpartition(":")[2]]
    assert method in vars(ours), f"{ours.__name__} no longer overrides {method}: drop the entry"


@pytest.mark.parametrize(("where", "method", "params", "why"), PRIVATE_CALLS, ids=lambda v: v)
def test_each_private_method_we_call_is_still_there(
    where: str, method: str, params: tuple[str, ...], why: str
) -> None:
    assert_sdk_method(where, method, params, why)


def test_the_boolean_helper_still_tells_booleans_apart() -> None:
    assert is_exclusive_boolean({"type": ["boolean", "null"]})
    assert is_exclusive_boolean({"type": "boolean"})
    assert not is_exclusive_boolean({"type": ["string", "null"]})
    assert not is_exclusive_boolean({"type": ["boolean", "string"]})


def test_the_config_merge_still_adds_only_what_is_missing() -> None:
    target = {"type": "object", "properties": {"a": {"type": "string", "description": "ours"}}}
    extra = {"properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}}}
    merge_missing_config_jsonschema(extra, target)
    assert target["properties"] == {
        "a": {"type": "string", "description": "ours"},
        "b": {"type": "boolean"},
    }


def test_the_private_attributes_read_are_still_there() -> None:
    tap = TapCalven(config={"api_key": "k", "api_secret": "s", "start_date": "2024-01-01"})
    stream = tap.streams["users"]
    owners = {"Stream": stream, "StreamStateManager": stream.state_manager}
    for where, attribute, why in PRIVATE_ATTRIBUTES:
        owner = owners[where.rpartition(":")[2]]
        assert hasattr(owner, attribute), f"singer-sdk no longer sets {where}.{attribute} ({why})"


def sdk_private_uses(path: Path) -> list[str]:
    """Private SDK names a module imports, and private SDK methods it overrides or calls."""
    hooks = {method for _, method, _, _ in (*PRIVATE_HOOKS, *PRIVATE_CALLS)}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("singer_sdk"):
            names = [node.module or "", *(alias.name for alias in node.names)]
            found += [name for name in names if any(p.startswith("_") for p in name.split("."))]
        if isinstance(node, ast.FunctionDef | ast.Attribute):
            name = node.name if isinstance(node, ast.FunctionDef) else node.attr
            if name in hooks or name in {attr for _, attr, _ in PRIVATE_ATTRIBUTES}:
                found.append(name)
    return found


def test_no_other_module_touches_an_sdk_internal() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 10
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in modules
        if path.name != "sdk_internals.py" and (uses := sdk_private_uses(path))
    }
    assert offenders == {}
    assert sdk_private_uses(PACKAGE / "sdk_internals.py")  # the scan sees them where they are


def test_make_test_runs_on_the_floor_of_the_sdk_pin() -> None:
    root = PACKAGE.parent
    floor = re.search(
        r"^SDK_FLOOR := singer-sdk\[msgspec\]==(\S+)$", (root / "Makefile").read_text(), re.M
    )
    pin = re.search(r'"singer-sdk\[msgspec\]~=([^"]+)"', (root / "pyproject.toml").read_text())
    assert floor, "the Makefile's SDK_FLOOR moved"
    assert pin, "pyproject's singer-sdk pin moved"
    assert floor.group(1) == pin.group(1)


def test_the_sdk_adding_its_builtins_leaves_our_schema_alone() -> None:
    from tap_calven.settings import CONFIG_SCHEMA, OWN_SETTINGS

    TapCalven.append_builtin_config(TapCalven.config_jsonschema)
    assert "flattening_max_depth" in TapCalven.config_jsonschema["properties"]
    assert set(CONFIG_SCHEMA["properties"]) == OWN_SETTINGS
