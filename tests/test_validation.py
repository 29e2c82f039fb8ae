"""Tests of et_hil.validation: every problem of a table, each named and in words."""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import msgspec

from et_hil.validation import Problem, convert_all, field_problems, find_problems

_Size = Annotated[int, msgspec.Meta(gt=0, extra={"expect": "a positive integer"})]
_Colour = Annotated[Literal["red", "green"], msgspec.Meta(extra={"expect": "'red' or 'green'"})]
_Level = Annotated[
    float,
    msgspec.Meta(extra={"expect": "a number"}),
    msgspec.Meta(le=sys.float_info.max, extra={"expect": "finite"}),
    msgspec.Meta(ge=0, extra={"expect": ">= 0"}),
]


class Shade(msgspec.Struct, forbid_unknown_fields=True):
    """A table that can also be written as its text: ``shade = "dark"``."""

    tone: str
    depth: _Size = 1


class Lamp(msgspec.Struct, forbid_unknown_fields=True):
    level: _Level = 0.0
    sizes: dict[str, _Size] = {}
    tags: dict[str, str] = {}
    colours: list[_Colour] = []
    names: Annotated[list[str], msgspec.Meta(extra={"expect": "a list of strings"})] = []
    shade: str | Shade = "none"


class Worded(msgspec.Struct, forbid_unknown_fields=True):
    """A structure that words its problems itself."""

    volume: _Size = 1

    @classmethod
    def problem_text(cls, problem: Problem) -> str:
        if problem.kind == "invalid":
            return f"{problem.table}: turn '{problem.key}' to {problem.expect}, not {problem.value}"
        return problem.standard_text()


def test_a_constraint_split_over_meta_names_the_one_the_value_fails() -> None:
    # the value's type first, then each constraint in the order declared
    assert field_problems({"level": "x"}, Lamp, "[lamp]") == [
        "[lamp] field 'level' must be a number, got 'x'"
    ]
    assert field_problems({"level": float("inf")}, Lamp, "[lamp]") == [
        "[lamp] field 'level' must be finite, got inf"
    ]
    assert field_problems({"level": float("nan")}, Lamp, "[lamp]") == [
        "[lamp] field 'level' must be finite, got nan"
    ]
    assert field_problems({"level": -1}, Lamp, "[lamp]") == [
        "[lamp] field 'level' must be >= 0, got -1"
    ]
    assert field_problems({"level": 2}, Lamp, "[lamp]") == []


def test_each_entry_of_a_table_of_any_keys_is_named() -> None:
    assert field_problems({"sizes": {"a": 0, "b": 2, "c": "big"}}, Lamp, "[lamp]") == [
        "[lamp.sizes] field 'a' must be a positive integer, got 0",
        "[lamp.sizes] field 'c' must be a positive integer, got 'big'",
    ]


def test_entries_that_say_nothing_are_checked_as_a_whole() -> None:
    # no words of their own: the whole table, with msgspec's message (as before)
    [problem] = field_problems({"tags": {"a": 1}}, Lamp, "[lamp]")
    assert problem.startswith("[lamp] field 'tags' = {'a': 1}: Expected `str`, got `int`")


def test_each_item_that_says_what_it_expects_is_named_by_its_place() -> None:
    assert field_problems({"colours": ["red", "mauve", 3]}, Lamp) == [
        "field 'colours' item 2 must be 'red' or 'green', got 'mauve'",
        "field 'colours' item 3 must be 'red' or 'green', got 3",
    ]
    # not an array at all: the field's own words (none here: msgspec's)
    [problem] = field_problems({"colours": "red"}, Lamp)
    assert problem.startswith("field 'colours' = 'red': Expected `array`, got `str`")


def test_items_that_say_nothing_are_checked_as_a_whole() -> None:
    assert field_problems({"names": ["a", 2]}, Lamp) == [
        "field 'names' must be a list of strings, got ['a', 2]"
    ]


def test_a_field_of_a_text_or_a_table_takes_either() -> None:
    assert field_problems({"shade": "dark"}, Lamp) == []
    assert field_problems({"shade": {"tone": "dark", "depth": 2}}, Lamp) == []
    # a table is checked as the structure, field by field
    assert field_problems({"shade": {"depth": 0, "hue": 1}}, Lamp, "[lamp]") == [
        "[lamp.shade] unknown field 'hue' (known: tone, depth)",
        "[lamp.shade] missing required field 'tone'",
        "[lamp.shade] field 'depth' must be a positive integer, got 0",
    ]


def test_a_structure_may_word_its_own_problems() -> None:
    [problem] = find_problems({"volume": 0}, Worded, "[amp]")
    assert (problem.table, problem.key, problem.kind, problem.value) == (
        "[amp]",
        "volume",
        "invalid",
        0,
    )
    assert str(problem) == "[amp]: turn 'volume' to a positive integer, not 0"
    assert problem.standard_text() == "[amp] field 'volume' must be a positive integer, got 0"
    # what it does not word itself keeps the standard words
    assert field_problems({"gain": 1}, Worded, "[amp]") == [
        "[amp] unknown field 'gain' (known: volume)"
    ]


def test_convert_all_gives_the_value_or_every_problem_in_words() -> None:
    lamp, problems = convert_all({"level": 1, "sizes": {"a": 3}}, Lamp)
    assert problems == []
    assert lamp == Lamp(level=1.0, sizes={"a": 3})
    lamp, problems = convert_all({"level": -1, "sizes": {"a": 0}}, Lamp)
    assert lamp is None
    assert problems == [
        "field 'level' must be >= 0, got -1",
        "[sizes] field 'a' must be a positive integer, got 0",
    ]
