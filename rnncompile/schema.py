"""The JSON Schema of a spec, generated from the registered layer kinds (plugins included), and
validation that reports every error with its JSON path, what was expected and what was found."""
from __future__ import annotations

import re
from typing import Any, Iterable

import jsonschema

from .errors import Problem
from .layer import REGISTRY, Layer

SCHEMA_ID = "https://rnncompile.dev/schemas/spec.schema.json"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*(:[0-9]+)?$"

COMMON_FIELDS = {
    "class_name": {"type": "string", "description": "the layer kind"},
    "name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 128,
             "description": "unique layer name (default: Keras-style from the kind)"},
    "inputs": {"anyOf": [{"type": "string", "pattern": REF_PATTERN},
                         {"type": "array", "items": {"type": "string", "pattern": REF_PATTERN},
                          "minItems": 1}],
               "description": "input reference(s): `layer` or `layer:k`; default: the previous layer"},
}


def layer_schema(cls: type[Layer]) -> dict:
    props = {k: dict(v) for k, v in COMMON_FIELDS.items()}
    props["class_name"] = {"const": cls.class_name}
    props.update(cls.attributes)
    return {"type": "object", "description": cls.description, "properties": props,
            "required": ["class_name", *cls.required], "additionalProperties": False}


def spec_schema(builtin_only: bool = False) -> dict:
    """The spec's JSON Schema over the registered layer kinds (plugins included, unless
    `builtin_only`: the committed schemas/spec.schema.json is the built-in one)."""
    kinds = sorted(k for k, cls in REGISTRY.items()
                   if not builtin_only or cls.__module__.startswith("rnncompile.layers."))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "rnncompile model spec",
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 128},
            "weights": {"type": "string", "description": ".npz file of Keras-layout weights, "
                                                         "relative to the spec file"},
            "seed": {"type": "integer", "minimum": 0, "maximum": 2 ** 32 - 1, "default": 0},
            "layers": {"type": "array", "minItems": 1, "maxItems": 10000, "items": {
                "type": "object", "required": ["class_name"],
                "properties": {"class_name": {"enum": kinds}},
                "allOf": [{"if": {"properties": {"class_name": {"const": k}}},
                           "then": {"$ref": f"#/$defs/{k}"}} for k in kinds]}},
            "outputs": {"type": "array", "minItems": 1,
                        "items": {"type": "string", "pattern": REF_PATTERN}},
        },
        "required": ["layers"],
        "additionalProperties": False,
        "$defs": {k: layer_schema(REGISTRY[k]) for k in kinds},
    }


def json_path(parts: Iterable[Any], root: str = "$") -> str:
    out = root
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if re.match(r"^[A-Za-z_]\w*$", str(p)) else f"[{p!r}]")
    return out


def _describe(err: jsonschema.ValidationError, path: str, what: str) -> Problem:
    v = err.validator
    if v == "additionalProperties":
        known = sorted((err.schema.get("properties") or {}).keys())
        extra = sorted(set(err.instance) - set(known)) if isinstance(err.instance, dict) else []
        field = extra[0] if extra else "?"
        return Problem(f"{path}.{field}" if re.match(r"^[A-Za-z_]\w*$", field) else f"{path}[{field!r}]",
                       f"unknown field {field!r} for {what}; expected one of: {', '.join(known)}")
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return Problem(f"{path}.{missing}", f"required field missing for {what}")
    if v == "enum":
        return Problem(path, f"expected one of {err.validator_value}, found {err.instance!r}")
    if v == "const":
        return Problem(path, f"expected {err.validator_value!r}, found {err.instance!r}")
    if v == "type":
        return Problem(path, f"expected {err.validator_value}, found {type(err.instance).__name__} "
                             f"{_short(err.instance)}")
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        rel = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[v]
        return Problem(path, f"expected a value {rel} {err.validator_value}, found {err.instance!r}")
    if v == "pattern":
        return Problem(path, f"expected a name or reference matching {err.validator_value}, found {err.instance!r}")
    if v in ("minItems", "maxItems"):
        return Problem(path, f"expected {'at least' if v == 'minItems' else 'at most'} "
                             f"{err.validator_value} item(s), found {len(err.instance)}")
    if v == "anyOf":
        return Problem(path, f"expected {_anyof_text(err.schema)}, found {_short(err.instance)}")
    return Problem(path, err.message)


def _anyof_text(schema: dict) -> str:
    parts = []
    for s in schema.get("anyOf", []):
        parts.append(s.get("type", "value") if "type" in s else "value")
    return " or ".join(str(p) for p in parts)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


#: JSON Schema counts 2.0 as an integer; rnncompile does not (sizes and counts are written as
#: integers, and a float there is refused with "expected integer, found float 2.0" rather than
#: accepted here and rejected later by ONNX). Booleans are not integers either.
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, v: isinstance(v, int) and not isinstance(v, bool)))


def validate(instance: Any, schema: dict, root: str, what: str) -> list[Problem]:
    """Every violation of `schema` by `instance`, as Problems with JSON paths below `root`."""
    validator = _Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.validator)):
        problems.append(_describe(err, json_path(err.absolute_path, root), what))
    return problems
