"""Checks emulator requests against Discord's OpenAPI file, so the emulator rejects what Discord would.

A deliberately small JSON-Schema subset (type, required, properties, enum, lengths, oneOf/anyOf/allOf, $ref):
enough to catch a wrong route, a missing required field or an over-long label, without a new dependency.
Snowflakes are accepted as integers too, because Discord (and discord.py) send them both ways.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from tests.emulators.specs import SPECS_DIR

SPEC_PATH = SPECS_DIR / "discord_openapi.json"


@dataclass(frozen=True, slots=True)
class SpecRoute:
    template: str
    pattern: re.Pattern[str]
    operations: dict[str, Any]


@cache
def _spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return data


@cache
def _routes() -> tuple[SpecRoute, ...]:
    routes = []
    for template, item in _spec()["paths"].items():
        regex = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$"
        ops = {m.upper(): op for m, op in item.items() if m != "parameters"}
        routes.append(SpecRoute(template, re.compile(regex), ops))
    # Literal segments (`@me`, `@original`) must win over placeholders.
    routes.sort(key=lambda r: r.template.count("{"))
    return tuple(routes)


def find_route(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The spec's path template and operation for a concrete request, or None if Discord has no such route."""
    for route in _routes():
        if route.pattern.match(path) and method.upper() in route.operations:
            return route.template, route.operations[method.upper()]
    return None


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = _spec()["components"]["schemas"][name]
    return schema


# Bit sets: the OpenAPI file types them as integers, the docs as strings; Discord and discord.py use both.
BITSET_FIELDS = frozenset({"allow", "deny", "permissions", "default_member_permissions"})


def _type_ok(expected: str, value: Any, fmt: str | None, name: str = "") -> bool:
    if expected == "integer" and name in BITSET_FIELDS and isinstance(value, str):
        return value.isdigit()
    match expected:
        case "null":
            return value is None
        case "string":
            return isinstance(value, str) or (fmt == "snowflake" and isinstance(value, int))
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "array":
            return isinstance(value, list)
        case "object":
            return isinstance(value, dict)
    return True


def validate(schema: dict[str, Any], value: Any, where: str = "") -> list[str]:
    """Errors in `value` against `schema`, as Discord-style dotted paths (empty list: valid)."""
    schema = _resolve(schema)
    errors: list[str] = []
    if "oneOf" in schema or "anyOf" in schema:
        options = schema.get("oneOf") or schema.get("anyOf") or []
        results = [validate(option, value, where) for option in options]
        if not any(not r for r in results):
            best = min(results, key=len)
            errors.extend(best or [f"{where or 'body'}: matches no allowed shape"])
    for part in schema.get("allOf", []):
        errors.extend(validate(part, value, where))
    types = schema.get("type")
    if types is not None:
        type_list = types if isinstance(types, list) else [types]
        name = where.rsplit(".", 1)[-1]
        if not any(_type_ok(t, value, schema.get("format"), name) for t in type_list):
            return [*errors, f"{where or 'body'}: expected {'/'.join(type_list)}"]
    if "enum" in schema and value not in schema["enum"] and value is not None:
        errors.append(f"{where}: value {value!r} not allowed")
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", 1 << 30):
            errors.append(f"{where}: must be {schema['maxLength']} or fewer in length")
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: must be {schema['minLength']} or more in length")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", 1 << 30):
            errors.append(f"{where}: must be {schema['maxItems']} or fewer in length")
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: must be {schema['minItems']} or more in length")
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                errors.extend(validate(items, item, f"{where}.{i}" if where else str(i)))
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where + '.' if where else ''}{name}: This field is required")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors.extend(validate(sub, value[name], f"{where}.{name}" if where else name))
    return errors


def check_body(operation: dict[str, Any], body: Any, *, multipart: bool = False) -> list[str]:
    """Validate a request body against the operation's `application/json` schema, or its `multipart/form-data`
    one for a message with files (`body` is then the `payload_json` part)."""
    request = operation.get("requestBody")
    if request is None:
        return []
    content = request.get("content", {}).get("multipart/form-data" if multipart else "application/json")
    if content is None and multipart:
        return ["files: this route takes no files"]
    if content is None:
        return []
    if body is None:
        return ["body: This field is required"] if request.get("required") else []
    return validate(content["schema"], body)
