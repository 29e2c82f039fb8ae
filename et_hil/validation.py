"""Declarative validation of the project's TOML files, with every problem at once.

Board files and their tables, serial settings and FVP platform files are typed
structures (``msgspec.Struct``): the types and constraints are declared once, on
the structure, and the same declaration gives the published JSON Schema
(``et-hil schema``). msgspec was chosen over attrs+cattrs for its import time
(about 17 ms against 67 ms, paid by every pytest run through the plugin) and its
JSON Schema output.

msgspec stops at the first error of a document. A user who fixes a file should
not have to run once per mistake, so :func:`find_problems` checks each field on
its own (recursing into tables, the tables of an array, the entries of a table
of any keys, and the items of an array whose items say what they expect) and
lists every problem, each naming its table and field.

A field says what it expects in words with ``Meta(extra={"expect": ...})``;
otherwise msgspec's own message is shown. Constraints split over several
``Meta``, each with its words (a number, then finite, then >= 0), name the first
one the value fails. A problem is a :class:`Problem` until it is put in words:
a structure whose users know other words for its problems (tolerances, limits)
words them itself with a ``problem_text`` classmethod.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, cast, get_args, get_origin

import msgspec

S = TypeVar("S", bound=msgspec.Struct)

ProblemKind = Literal["unknown", "misplaced", "missing", "invalid", "not_a_table", "across"]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem of a table against its declared type, before it is put in words.

    ``str()`` words it: with the ``problem_text`` classmethod of :attr:`owner` when
    it has one, else with :meth:`standard_text`.

    Attributes:
        table: the table it is in, as TOML names it (``[serial.flash]``; ``""``:
            the top level, or what the caller named).
        key: the field (or the key of a table of any keys) at fault; ``None``: the
            table itself.
        kind: ``unknown`` field, ``misplaced`` field (it belongs elsewhere),
            ``missing`` required field, ``invalid`` value, ``not_a_table``, or a
            problem ``across`` fields (the structure's own ``__post_init__``).
        value: the value at fault (``invalid``).
        index: the place (from 1) of an array's item at fault, else ``None``.
        expect: what the field expects, in its ``Meta``'s words, or ``None``.
        detail: msgspec's message (``invalid`` without words), the advice
            (``misplaced``) or the structure's error (``across``).
        known: the fields the table has (``unknown``).
        owner: the structure the table is declared by, if any.
    """

    table: str
    key: str | None
    kind: ProblemKind
    value: Any = None
    index: int | None = None
    expect: str | None = None
    detail: str = ""
    known: tuple[str, ...] = ()
    owner: type[msgspec.Struct] | None = None

    def __str__(self) -> str:
        words = getattr(self.owner, "problem_text", None)
        return str(words(self)) if words is not None else self.standard_text()

    def standard_text(self) -> str:
        """The problem in the words every table uses: ``[serial] field 'baud' must be
        a positive integer, got 'fast'``."""
        prefix = f"{self.table} " if self.table else ""
        if self.kind == "unknown":
            return f"{prefix}unknown field '{self.key}' (known: {', '.join(self.known)})"
        if self.kind == "missing":
            return f"{prefix}missing required field '{self.key}'"
        if self.kind == "not_a_table":
            if self.key is None:
                return f"{self.table or 'it'} must be a table"
            return f"{nested_table(self.table, self.key)} must be a table"
        if self.kind == "invalid":
            item = f" item {self.index}" if self.index is not None else ""
            if self.expect:
                return f"{prefix}field '{self.key}'{item} must be {self.expect}, got {self.value!r}"
            return f"{prefix}field '{self.key}'{item} = {self.value!r}: {self.detail}"
        return f"{prefix}{self.detail}"  # misplaced, across


def _accepts(annotation: Any, value: Any) -> bool:
    try:
        msgspec.convert(value, annotation, strict=True)
    except msgspec.ValidationError:
        return False
    return True


def _worded(meta: object) -> str | None:
    """The ``expect`` words of a ``Meta``, if it has some."""
    if isinstance(meta, msgspec.Meta) and meta.extra and "expect" in meta.extra:
        return str(meta.extra["expect"])
    return None


def _expectation(annotation: Any, value: Any) -> str | None:
    """What a field expects of ``value``, in the words of its ``Meta`` (looking
    inside ``X | None``): of several worded ``Meta`` on one type, the first that
    ``value`` fails on its own."""
    if get_origin(annotation) is Annotated:
        base, *metas = get_args(annotation)
        worded = [(meta, words) for meta in metas if (words := _worded(meta)) is not None]
        if len(worded) > 1:
            # Annotated[...] built at run time: a type expression mypy cannot see
            alone = cast(Any, Annotated)
            for meta, words in worded:
                if not _accepts(alone[base, meta], value):
                    return words
        if worded:
            return worded[0][1]
        return _expectation(base, value)
    if get_origin(annotation) in (Union, UnionType):  # not inside an array's items
        for arg in get_args(annotation):
            if arg is not NoneType and (found := _expectation(arg, value)):
                return found
    return None


def _says_what_it_expects(annotation: Any) -> bool:
    """Whether a type has ``expect`` words of its own, or is a table (a Struct)."""
    if _struct_type(annotation) is not None:
        return True
    if get_origin(annotation) is Annotated:
        base, *metas = get_args(annotation)
        return any(_worded(meta) for meta in metas) or _says_what_it_expects(base)
    if get_origin(annotation) in (Union, UnionType):
        return any(_says_what_it_expects(arg) for arg in get_args(annotation))
    return False


def _strip(annotation: Any) -> Any:
    """The type inside ``Annotated[...]``."""
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _alternatives(annotation: Any) -> tuple[Any, ...]:
    """The types a field may hold but ``None``: each member of a union, else the type."""
    annotation = _strip(annotation)
    if get_origin(annotation) in (Union, UnionType):
        found = (_strip(arg) for arg in get_args(annotation))
        return tuple(arg for arg in found if arg is not NoneType and arg is not msgspec.UnsetType)
    return (annotation,)


def _struct_type(annotation: Any) -> type[msgspec.Struct] | None:
    """The Struct class of a field typed as one (optionally ``| None``, or beside a
    text form: ``str | LimitTable``)."""
    for candidate in _alternatives(annotation):
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    return None


def _item_type(annotation: Any) -> Any:
    """The item type of a field typed as an array (``list[X]``, ``tuple[X, ...]``), or ``None``."""
    for candidate in _alternatives(annotation):
        args = get_args(candidate)
        origin = get_origin(candidate)
        homogeneous_tuple = origin is tuple and len(args) == 2 and args[1] is ...
        if (origin is list and args) or homogeneous_tuple:
            return args[0]
    return None


def _entry_type(annotation: Any) -> Any:
    """The value type of a field typed as a table of any keys (``dict[str, X]``), or ``None``."""
    for candidate in _alternatives(annotation):
        if get_origin(candidate) is dict:
            return get_args(candidate)[1]
    return None


def _tagged_variants(annotation: Any) -> tuple[str, dict[Any, type[msgspec.Struct]]] | None:
    """The tag field and the Struct of each tag, for a field typed as a tagged union
    (``PyocdFlash | CommandFlash``, told apart by ``method``); else ``None``."""
    structs = [
        candidate
        for candidate in _alternatives(annotation)
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct)
    ]
    configs = [struct.__struct_config__ for struct in structs]
    tag_fields = {config.tag_field for config in configs}
    if len(structs) < 2 or len(tag_fields) != 1 or None in tag_fields:
        return None
    return str(tag_fields.pop()), {
        config.tag: s for config, s in zip(configs, structs, strict=True)
    }


def _either(values: Sequence[Any]) -> str:
    """``'a', 'b' or 'c'``."""
    quoted = [repr(value) for value in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _is_table(annotation: Any) -> bool:
    """Whether a field holds a TOML table and nothing else (a dict or a Struct)."""
    alternatives = _alternatives(annotation)
    return bool(alternatives) and all(
        _struct_type(candidate) is not None or get_origin(candidate) is dict
        for candidate in alternatives
    )


def nested_table(table: str, name: str) -> str:
    """Table ``name`` inside ``table``: ``[serial]`` and ``flash`` give ``[serial.flash]``."""
    return f"{table[:-1]}.{name}]" if table.endswith("]") else f"[{name}]"


def _value_problems(
    value: Any, annotation: Any, table: str, key: str, owner: type[msgspec.Struct]
) -> list[Problem]:
    """Every problem of ``value`` as the field ``key`` of ``table``, typed ``annotation``."""
    tagged = _tagged_variants(annotation)
    if tagged is not None and isinstance(value, Mapping):
        # a table of one of several kinds: its tag says which, then it is checked as that one
        tag_field, variants = tagged
        where = nested_table(table, key)
        if tag_field not in value:
            return [Problem(where, tag_field, "missing")]
        if value[tag_field] not in variants:
            choices = _either(list(variants))
            return [Problem(where, tag_field, "invalid", value[tag_field], expect=choices)]
        return find_problems(value, variants[value[tag_field]], where)
    nested = _struct_type(annotation)
    if nested is not None and isinstance(value, Mapping):
        return find_problems(value, nested, nested_table(table, key))
    if _is_table(annotation) and not isinstance(value, Mapping):
        return [Problem(table, key, "not_a_table", value, owner=owner)]
    # An array or a table of any keys is checked item by item when its items are
    # tables or say what they expect; else as a whole, with the field's own words.
    found: list[Problem] = []
    items = _item_type(annotation)
    if items is not None and isinstance(value, list) and _says_what_it_expects(items):
        struct = _struct_type(items)
        if struct is not None:  # an array of tables: each named [table #k]
            where = nested_table(table, key)[:-1]
            found = [
                problem
                for k, item in enumerate(value)
                for problem in find_problems(item, struct, f"{where} #{k + 1}]")
            ]
        else:
            found = [
                dataclasses.replace(problem, index=k + 1)
                for k, item in enumerate(value)
                for problem in _value_problems(item, items, table, key, owner)
            ]
    entries = _entry_type(annotation)
    if entries is not None and isinstance(value, Mapping) and _says_what_it_expects(entries):
        found = [
            problem
            for name, entry in value.items()
            for problem in _value_problems(entry, entries, nested_table(table, key), name, owner)
        ]
    if found:
        return found
    # else the whole value: its type, or the constraints of the whole array (length)
    try:
        msgspec.convert(value, annotation, strict=True)
    except msgspec.ValidationError as exc:
        expect = _expectation(annotation, value)
        return [Problem(table, key, "invalid", value, expect=expect, detail=str(exc), owner=owner)]
    return []


def find_problems(
    data: Mapping[str, Any], cls: type[msgspec.Struct], table: str = ""
) -> list[Problem]:
    """Every problem of ``data`` as ``cls``: unknown fields, missing required
    ones, and each field of the wrong type or out of range. Tables (Struct
    fields), arrays of tables (``list``/``tuple`` of a Struct, each item named
    ``[table #k]``), tables of any keys (``dict[str, X]``: each entry) and
    arrays whose item type says what it expects (each item) are checked one
    by one too.

    A field typed as a tagged union (``PyocdFlash | CommandFlash``, Structs with
    one ``tag_field``) is checked as the variant its tag names; a missing or
    unknown tag is the problem.

    ``table`` names the table ``data`` is (``[memory]``). A Struct may give advice
    for fields that belong elsewhere in a class variable ``misplaced_fields``
    (field name: the whole message after the table).
    """
    if not isinstance(data, Mapping):
        return [Problem(table, None, "not_a_table", data, owner=cls)]
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    tag_field = cls.__struct_config__.tag_field  # a variant's tag (method = "pyocd")
    known = (tag_field, *fields) if tag_field is not None else tuple(fields)
    misplaced: Mapping[str, str] = getattr(cls, "misplaced_fields", {})
    problems = [
        Problem(table, key, "misplaced", detail=misplaced[key], owner=cls)
        if key in misplaced
        else Problem(table, key, "unknown", known=known, owner=cls)
        for key in data
        if key not in known
    ]
    for name, field in fields.items():
        if name in data:
            problems += _value_problems(data[name], field.type, table, name, cls)
        elif field.required:
            problems.append(Problem(table, name, "missing", owner=cls))
    return problems


def field_problems(
    data: Mapping[str, Any], cls: type[msgspec.Struct], table: str = ""
) -> list[str]:
    """:func:`find_problems`, in words."""
    return [str(problem) for problem in find_problems(data, cls, table)]


def problems_message(where: str, problems: Sequence[str | Problem]) -> str:
    """One message for every problem of a file: one line for one, a list for several.

    ``where`` names the file (``board file /lab/b.toml``).
    """
    if len(problems) == 1:
        return f"{where}: {problems[0]}"
    lines = "".join(f"\n  - {problem}" for problem in problems)
    return f"{where}: {len(problems)} problems:{lines}"


def decode(
    data: Mapping[str, Any], cls: type[S], table: str = ""
) -> tuple[S | None, list[Problem]]:
    """``data`` as a ``cls``, or ``None`` and every problem (see :func:`find_problems`)."""
    problems = find_problems(data, cls, table)
    if problems:
        return None, problems
    try:
        return msgspec.convert(data, cls, strict=True), []
    except msgspec.ValidationError as exc:  # a constraint across fields (__post_init__)
        return None, [Problem(table, None, "across", detail=str(exc), owner=cls)]


def convert_all(
    data: Mapping[str, Any], cls: type[S], table: str = ""
) -> tuple[S | None, list[str]]:
    """:func:`decode`, with the problems in words."""
    converted, problems = decode(data, cls, table)
    return converted, [str(problem) for problem in problems]


def json_schema(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema of a structure (the same declaration that validates it)."""
    schema: dict[str, Any] = msgspec.json.schema(cls)
    return schema
