"""Bounded dynamic shapes: et_check(model, inputs, dynamic_shapes=...) exports with them
and runs the program at its example, smallest and largest sizes on boards that can."""

from __future__ import annotations

import json

import pytest
import torch

from et_hil.programs.dynamic_shapes import resized, shape_allowed, sizes, spec_key

DIMS = {"inputs": [["s0", 16], ["2*s0"]], "symbols": {"s0": [1, 8]}}


def test_the_sizes_are_the_examples_the_smallest_and_the_largest() -> None:
    found = sizes(DIMS, [[3, 16], [6]])
    assert [(s.label, s.shapes) for s in found] == [
        ("example", [[3, 16], [6]]),
        ("smallest", [[1, 16], [2]]),
        ("largest", [[8, 16], [16]]),
    ]
    # an example at a bound is not run twice
    assert [s.label for s in sizes(DIMS, [[8, 16], [16]])] == ["example", "smallest"]


def test_a_shape_is_allowed_within_the_bounds_only() -> None:
    assert shape_allowed(DIMS, 0, [5, 16])
    assert not shape_allowed(DIMS, 0, [9, 16])
    assert not shape_allowed(DIMS, 0, [5, 15])
    assert shape_allowed(DIMS, 1, [16])
    assert not shape_allowed(DIMS, 1, [17])


def test_inputs_are_tiled_or_cropped_keeping_their_values() -> None:
    ids = torch.tensor([[3, 1, 4]])
    assert resized(ids, [2, 5]).tolist() == [[3, 1, 4, 3, 1], [3, 1, 4, 3, 1]]
    assert resized(ids, [1, 2]).tolist() == [[3, 1]]


def test_the_cache_key_names_each_dim_and_its_bounds() -> None:
    batch = torch.export.Dim("batch", min=1, max=8)
    assert spec_key({"x": {0: batch}}) == {"x": {"0": {"dim": "batch", "min": 1, "max": 8}}}
    other = torch.export.Dim("batch", min=1, max=16)
    assert spec_key({"x": {0: batch}}) != spec_key({"x": {0: other}})


DYNAMIC = """
import torch
from torch.export import Dim

import pytest


class Head(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, x):
        return torch.softmax(self.fc(x), dim=-1)


class WrongAboveFour(Head):
    '''The same, but its outputs double for batches above 4: a reference that only
    the largest size can tell from the program.'''

    def forward(self, x):
        y = super().forward(x)
        return y * 2 if x.shape[0] > 4 else y


def make(cls=Head):
    torch.manual_seed(0)
    return cls().eval()


BATCH = {"x": {0: Dim("batch", min=1, max=8)}}
X = (torch.randn(3, 16, generator=torch.Generator().manual_seed(0)),)


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_three_sizes(et_check, quantize):
    et_check(make(), X, quantize=quantize, dynamic_shapes=BATCH)


def test_a_size_that_differs(et_check):
    et_check(make(), X, dynamic_shapes=BATCH, reference=make(WrongAboveFour))


def test_unbounded(et_check):
    et_check(make(), X, dynamic_shapes={"x": {0: Dim("batch", min=1)}})
"""


@pytest.mark.slow
@pytest.mark.timeout(300)  # took 80 s
def test_a_dynamic_shape_model_runs_at_three_sizes_where_it_can(et_pytester):
    et_pytester.makepyfile(DYNAMIC)
    result = et_pytester.runpytest_subprocess(
        "--et-board=host", "--et-board=tosa", "--et-debug=off"
    )
    result.assert_outcomes(passed=2, failed=2, skipped=4)
    records = {
        r["test"].split("::")[1]: r
        for r in map(
            json.loads, (et_pytester.path / "et-hil-results/results.jsonl").read_text().splitlines()
        )
    }
    for quantize in ("None", "int8"):
        checks = records[f"test_three_sizes[host-{quantize}]"]["checks"]
        assert [(c["size"], c["input_shapes"], c["passed"]) for c in checks] == [
            ("example", [[3, 16]], True),
            ("smallest", [[1, 16]], True),
            ("largest", [[8, 16]], True),
        ]
    wrong = records["test_a_size_that_differs[host]"]
    assert [c["passed"] for c in wrong["checks"]] == [True, True, False]
    result.stdout.fnmatch_lines(
        ["*model 'Head' on board 'host' at its largest size (s*=8; inputs [[]8, 16[]]): "
         "outputs differ from the reference*"]
    )  # fmt: skip
    assert records["test_unbounded[host]"]["failure_class"] == "build_error"
    result.stdout.fnmatch_lines(["*dynamic dimension(s) batch have no upper bound: give its Dim*"])
    skipped = records["test_three_sizes[tosa-int8]"]
    assert skipped["outcome"] == "skipped"
    assert (
        "board 'tosa' cannot run dynamic-shape programs: TOSA delegates are compiled"
        in (skipped["message"])
    )
