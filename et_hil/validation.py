"""Declarative validation of the project's TOML files, with every problem at once.

Board files, their kinds' tables, serial settings and FVP platform files are
typed structures (``msgspec.Struct``): the types and constraints are declared
once, on the structure, and the same declaration gives the published JSON
Schema (``et-hil schema``). msgspec was chosen over attrs+cattrs for its import
time (about 17 ms against 67 ms, paid by every pytest run through the plugin)
and its JSON Schema output.

msgspec stops at the first error of a document. A user who fixes a file should
not have to run once per mistake, so :func:`convert_all` checks each field on
its own (recursing into tables) and lists every problem, each naming its field.
A field may say what it expects in words with ``Meta(extra={"expect": ...})``;
otherwise msgspec's own message is shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import msgspec

S = TypeVar("S", bound=msgspec.Struct)


def _expectation(annotation: Any) -> str | None:
    """The ``expect`` words of a field's ``Meta`` (looking inside ``X | None``)."""
    if get_origin(annotation) is Annotated:
        for meta in get_args(annotation)[1:]:
            if isinstance(meta, msgspec.Meta) and meta.extra and "expect" in meta.extra:
                return str(meta.extra["expect"])
        return _expectation(get_args(annotation)[0])
    for arg in get_args(annotation):
        if arg is not type(None) and (found := _expectation(arg)):
            return found
    return None


def _strip(annotation: Any) -> Any:
    """The type inside ``Annotated[...]``."""
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _alternatives(annotation: Any) -> tuple[Any, ...]:
    """The types a field may hold: each member of a union (``X | None``), else the type."""
    annotation = _strip(annotation)
    if get_origin(annotation) in (Union, UnionType):
        return tuple(_strip(arg) for arg in get_args(annotation))
    return (annotation,)


def _struct_type(annotation: Any) -> type[msgspec.Struct] | None:
    """The Struct class of a field typed as one (optionally ``| None``)."""
    for candidate in _alternatives(annotation):
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    return None


def _item_struct_type(annotation: Any) -> type[msgspec.Struct] | None:
    """The Struct class of a field typed as an array of them (a TOML ``[[table]]``)."""
    for candidate in _alternatives(annotation):
        args = get_args(candidate) if get_origin(candidate) in (list, tuple) else ()
        if args and (found := _struct_type(args[0])) is not None:
            return found
    return None


def _is_table(annotation: Any) -> bool:
    """Whether a field holds a TOML table (a dict or a Struct)."""
    return _struct_type(annotation) is not None or any(
        get_origin(candidate) is dict for candidate in _alternatives(annotation)
    )


def _nested(table: str, name: str) -> str:
    """Table ``name`` inside ``table``: ``[serial]`` and ``flash`` give ``[serial.flash]``."""
    return f"{table[:-1]}.{name}]" if table else f"[{name}]"


def field_problems(
    data: Mapping[str, Any], cls: type[msgspec.Struct], table: str = ""
) -> list[str]:
    """Every problem of ``data`` as ``cls``: unknown fields, missing required
    ones, and each field of the wrong type or out of range. Tables (Struct
    fields) and arrays of tables (``list``/``tuple`` of a Struct) are checked
    field by field too, each item named ``[table #k]``.

    ``table`` prefixes each problem with the table it is in (``[memory]``).
    A Struct may give advice for fields that belong elsewhere in a class
    variable ``misplaced_fields`` (field name: the whole message after the table).
    """
    prefix = f"{table} " if table else ""
    if not isinstance(data, Mapping):
        return [f"{table or 'it'} must be a table"]
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    misplaced: Mapping[str, str] = getattr(cls, "misplaced_fields", {})
    problems = [
        f"{prefix}{misplaced[key]}"
        if key in misplaced
        else f"{prefix}unknown field '{key}' (known: {', '.join(fields)})"
        for key in data
        if key not in fields
    ]
    for name, field in fields.items():
        if name not in data:
            if field.required:
                problems.append(f"{prefix}missing required field '{name}'")
            continue
        value = data[name]
        nested = _struct_type(field.type)
        if nested is not None and isinstance(value, Mapping):
            problems += field_problems(value, nested, _nested(table, name))
            continue
        if _is_table(field.type) and not isinstance(value, Mapping):
            problems.append(f"{_nested(table, name)} must be a table")
            continue
        items = _item_struct_type(field.type)
        if items is not None and isinstance(value, list):
            where = _nested(table, name)[:-1]
            found = [
                problem
                for k, item in enumerate(value)
                for problem in field_problems(item, items, f"{where} #{k + 1}]")
            ]
            if found:
                problems += found
                continue  # else the whole array's constraints (length) are checked below
        try:
            msgspec.convert(value, field.type, strict=True)
        except msgspec.ValidationError as exc:
            expect = _expectation(field.type)
            if expect:
                problems.append(f"{prefix}field '{name}' must be {expect}, got {value!r}")
            else:
                problems.append(f"{prefix}field '{name}' = {value!r}: {exc}")
    return problems


def problems_message(where: str, problems: Sequence[str]) -> str:
    """One message for every problem of a file: one line for one, a list for several.

    ``where`` names the file (``board file /lab/b.toml``).
    """
    if len(problems) == 1:
        return f"{where}: {problems[0]}"
    lines = "".join(f"\n  - {problem}" for problem in problems)
    return f"{where}: {len(problems)} problems:{lines}"


def convert_all(
    data: Mapping[str, Any], cls: type[S], table: str = ""
) -> tuple[S | None, list[str]]:
    """``data`` as a ``cls``, or ``None`` and every problem (see :func:`field_problems`)."""
    problems = field_problems(data, cls, table)
    if problems:
        return None, problems
    try:
        return msgspec.convert(data, cls, strict=True), []
    except msgspec.ValidationError as exc:  # a constraint across fields (__post_init__)
        return None, [f"{table + ' ' if table else ''}{exc}"]


def json_schema(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema of a structure (the same declaration that validates it)."""
    schema: dict[str, Any] = msgspec.json.schema(cls)
    return schema
