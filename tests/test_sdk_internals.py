"""The SDK internals the tap uses (tap_calven/sdk_internals.py) still exist and behave.

If one of these fails after a singer-sdk upgrade, the message names the internal: fix its
use in the module the reason points at, or find the public API that now serves.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

from tap_calven.client import CalvenStream
from tap_calven.sdk_internals import (
    PRIVATE_HOOKS,
    is_exclusive_boolean,
    merge_missing_config_jsonschema,
)
from tap_calven.tap import TapCalven

OURS = {"Stream": CalvenStream, "PluginBase": TapCalven}


def sdk_class(path: str) -> type:
    module, _, name = path.partition(":")
    found: type = getattr(importlib.import_module(module), name)
    return found


@pytest.mark.parametrize(("where", "method", "params", "why"), PRIVATE_HOOKS, ids=lambda v: v)
def test_each_private_hook_we_override_is_still_there(
    where: str, method: str, params: tuple[str, ...], why: str
) -> None:
    base = sdk_class(where)
    assert hasattr(base, method), f"singer-sdk no longer has {where}.{method} ({why})"
    names = tuple(inspect.signature(getattr(base, method)).parameters)
    assert names == params, f"singer-sdk changed {where}.{method}{names}, expected {params}"
    ours = OURS[where.rpartition(":")[2]]
    assert method in vars(ours), f"{ours.__name__} no longer overrides {method}: drop the entry"


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
