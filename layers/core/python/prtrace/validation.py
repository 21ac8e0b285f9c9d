"""Turn pydantic validation errors into field errors with RFC 6901 JSON pointers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from prtrace.errors import FieldError, InvalidInput
from prtrace.schema import EVENT_TYPES

_UNION_TAGS = frozenset(EVENT_TYPES)
Model = TypeVar("Model", bound=BaseModel)


def json_pointer(loc: Sequence[Any]) -> str:
    """('events', 3, 'cmd_run', 'payload', 'argv') -> '/events/3/payload/argv'.

    pydantic inserts the discriminator value after a list index for tagged unions; that
    step is not part of the document, so it is dropped.
    """
    parts: list[str] = []
    previous: Any = None
    for step in loc:
        if isinstance(step, str) and step in _UNION_TAGS and isinstance(previous, int):
            previous = step
            continue
        if isinstance(step, str) and (step.startswith("function-") or step == "[key]"):
            previous = step
            continue  # validator wrappers, a mapping's key check: not document locations
        parts.append(str(step).replace("~", "~0").replace("/", "~1"))
        previous = step
    return "".join(f"/{part}" for part in parts)


def field_errors(errors: Iterable[Mapping[str, Any]], drop_prefix: int = 0) -> list[FieldError]:
    result = []
    for error in errors:
        loc = tuple(error.get("loc", ()))[drop_prefix:]
        message = str(error.get("msg", "invalid value"))
        result.append(FieldError(pointer=json_pointer(loc), message=message))
    return result


def summarize(errors: Sequence[FieldError]) -> str:
    """The first few field errors in one line, for a problem's `detail`."""
    shown = "; ".join(f"{e.pointer or '/'}: {e.message}" for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return shown + more


def errors_of(exc: ValidationError) -> list[FieldError]:
    """A pydantic refusal's field errors, without the refused input (it may be a secret)."""
    return field_errors(exc.errors(include_url=False, include_input=False))


def describe(exc: ValidationError) -> str:
    """A pydantic refusal in one line: `/pointer: message; …`."""
    return summarize(errors_of(exc))


def invalid_body(exc: ValidationError, what: str) -> InvalidInput:
    errors = errors_of(exc)
    return InvalidInput(f"{what} is invalid: {summarize(errors)}", errors)


def load_json(raw: bytes | str) -> Any:
    """Parse a request body as JSON Schema reads JSON: a number with no fractional part is
    an integer, so `3.0` (or `3e0`) is the integer 3. Other floats stay floats, for the strict
    models to refuse. Canonical forms are built from the models, so `3.0` and `3` store alike
    (as RFC 8785 does)."""
    return _whole_numbers_as_int(orjson.loads(raw))


def validate_document(model: type[Model], document: Any, what: str) -> Model:
    """`model` from a parsed JSON document, reading whole-number floats as `load_json` does.

    For large bodies (chunks): the strict models refuse floats where integers go, so the
    float-to-int walk over every value runs only when a refusal says a float was given,
    instead of on every body. Same answer as validating `load_json`'s output, at no cost
    for the bodies clients actually send.
    """
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        if not any(
            error["type"] == "int_type" and isinstance(error.get("input"), float)
            for error in exc.errors(include_url=False)
        ):
            raise invalid_body(exc, what) from None
    try:
        return model.model_validate(_whole_numbers_as_int(document))
    except ValidationError as exc:
        raise invalid_body(exc, what) from None


def _whole_numbers_as_int(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _whole_numbers_as_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_int(v) for v in value]
    return value
