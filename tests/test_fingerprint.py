"""Tests of et_hil.programs.fingerprint: what changes the cache key and what does not."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from et_hil.programs.fingerprint import (
    build_key,
    input_specs,
    model_fingerprint,
    tensor_digest,
    values_fingerprint,
)

torch = pytest.importorskip("torch")


class TinyNet(torch.nn.Module):
    def __init__(self, scale: float = 2.0) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.scale = scale
        self.register_buffer("offset", torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scale + self.offset


class DoubleIt(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * 2


class TripleIt(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * 3


class Wrapper(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def _seeded(factory: Any, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return factory()


# ---------------------------------------------------------------- model_fingerprint


def test_same_class_and_seed_same_hash() -> None:
    first = model_fingerprint(_seeded(TinyNet))
    second = model_fingerprint(_seeded(TinyNet))
    assert first == second
    assert len(first) == 64
    int(first, 16)  # hex


def test_different_seed_different_hash() -> None:
    assert model_fingerprint(_seeded(TinyNet, 0)) != model_fingerprint(_seeded(TinyNet, 1))


def test_changed_weight_changes_hash() -> None:
    model = _seeded(TinyNet)
    before = model_fingerprint(model)
    with torch.no_grad():
        model.fc.weight[0, 0] += 1.0
    assert model_fingerprint(model) != before


def test_changed_buffer_changes_hash() -> None:
    model = _seeded(TinyNet)
    before = model_fingerprint(model)
    model.offset.fill_(1.0)
    assert model_fingerprint(model) != before


def test_changed_dtype_changes_hash() -> None:
    # same values, stored as float64: dtype and bytes differ
    model = _seeded(TinyNet)
    before = model_fingerprint(model)
    assert model_fingerprint(model.double()) != before


def test_changed_plain_attribute_changes_hash() -> None:
    # self.scale is read by forward but is neither a parameter nor a buffer
    two = model_fingerprint(_seeded(lambda: TinyNet(scale=2.0)))
    three = model_fingerprint(_seeded(lambda: TinyNet(scale=3.0)))
    assert two != three


def test_changed_plain_attribute_of_submodule_changes_hash() -> None:
    model = _seeded(lambda: Wrapper(TinyNet()))
    before = model_fingerprint(model)
    model.inner.scale = 5.0
    assert model_fingerprint(model) != before


def test_train_eval_mode_does_not_change_hash() -> None:
    # "training" is nn.Module bookkeeping, not part of the program's identity
    model = _seeded(TinyNet)
    assert model_fingerprint(model.train()) == model_fingerprint(model.eval())


def test_different_class_source_changes_hash() -> None:
    # same structure, same weights (same seed, same layer shapes), different forward
    double = _seeded(DoubleIt)
    triple = _seeded(TripleIt)
    assert torch.equal(double.fc.weight, triple.fc.weight)
    assert model_fingerprint(double) != model_fingerprint(triple)


def test_submodule_class_source_changes_hash() -> None:
    assert model_fingerprint(_seeded(lambda: Wrapper(DoubleIt()))) != model_fingerprint(
        _seeded(lambda: Wrapper(TripleIt()))
    )


_MODULE_SOURCE = """\
import torch


class Scaler(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x) * {factor}
"""


def _load_module_version(folder: Path, factor: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    folder.mkdir()
    path = folder / "et_hil_fp_scaler.py"
    path.write_text(_MODULE_SOURCE.format(factor=factor))
    spec = importlib.util.spec_from_file_location("et_hil_fp_scaler", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "et_hil_fp_scaler", module)
    spec.loader.exec_module(module)
    return module


def test_same_qualified_name_different_source_changes_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two versions of the same module and class (et_hil_fp_scaler.Scaler), as after an
    # edit of forward: only the source code differs, so only it can change the hash.
    v1 = _load_module_version(tmp_path / "v1", 2, monkeypatch)
    hash_v1 = model_fingerprint(_seeded(v1.Scaler))
    v2 = _load_module_version(tmp_path / "v2", 3, monkeypatch)
    hash_v2 = model_fingerprint(_seeded(v2.Scaler))
    assert v1.Scaler.__qualname__ == v2.Scaler.__qualname__
    assert v1.Scaler.__module__ == v2.Scaler.__module__
    assert hash_v1 != hash_v2


# ---------------------------------------------------------------- tensors and inputs


def test_input_specs_format() -> None:
    specs = input_specs(
        [
            torch.zeros(1, 3, 8, 8),
            torch.zeros(4, dtype=torch.int64),
            torch.tensor(True),
        ]
    )
    assert specs == [
        {"shape": [1, 3, 8, 8], "dtype": "float32"},
        {"shape": [4], "dtype": "int64"},
        {"shape": [], "dtype": "bool"},
    ]


def test_values_fingerprint_depends_on_values() -> None:
    a = [(torch.zeros(2, 3),), (torch.ones(2, 3),)]
    b = [(torch.zeros(2, 3),), (torch.full((2, 3), 2.0),)]
    assert values_fingerprint(a) == values_fingerprint([(t.clone(),) for (t,) in a])
    assert values_fingerprint(a) != values_fingerprint(b)


def test_values_fingerprint_depends_on_order_and_grouping() -> None:
    x, y = torch.zeros(3), torch.ones(3)
    assert values_fingerprint([(x,), (y,)]) != values_fingerprint([(y,), (x,)])
    assert values_fingerprint([(x, y)]) != values_fingerprint([(x,), (y,)])


def test_values_fingerprint_depends_on_dtype() -> None:
    # the same zeros as float32 and int32 have the same bytes; the dtype still differs
    zeros_f = torch.zeros(4, dtype=torch.float32)
    zeros_i = torch.zeros(4, dtype=torch.int32)
    assert values_fingerprint([(zeros_f,)]) != values_fingerprint([(zeros_i,)])


def test_tensor_digest_ignores_memory_layout() -> None:
    t = torch.arange(6.0).reshape(2, 3)
    h1, h2 = hashlib.sha256(), hashlib.sha256()
    tensor_digest(h1, "t", t.T)  # non-contiguous view
    tensor_digest(h2, "t", t.T.contiguous())
    assert h1.hexdigest() == h2.hexdigest()


# ---------------------------------------------------------------- build_key

BASE: dict[str, Any] = {
    "model_hash": "m" * 64,
    "inputs": [{"shape": [1, 4], "dtype": "float32"}],
    "target": "portable",
    "options": {"quantize": False, "calibration": None},
    "versions": {"torch": "2.13.0", "executorch": "1.5.1", "pipeline": "1"},
}


def test_build_key_is_stable_and_hex() -> None:
    key = build_key(**BASE)
    assert key == build_key(**BASE)
    assert len(key) == 64
    int(key, 16)


def test_build_key_ignores_mapping_order() -> None:
    reordered = dict(BASE, options={"calibration": None, "quantize": False})
    assert build_key(**reordered) == build_key(**BASE)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("model_hash", "n" * 64, id="model"),
        pytest.param("target", "ethos-u55-128", id="target"),
        pytest.param("options", {"quantize": True, "calibration": None}, id="options-value"),
        pytest.param(
            "options", {"quantize": False, "calibration": None, "extra": 1}, id="options-added"
        ),
        pytest.param(
            "versions",
            {"torch": "2.13.1", "executorch": "1.5.1", "pipeline": "1"},
            id="torch-version",
        ),
        pytest.param(
            "versions",
            {"torch": "2.13.0", "executorch": "1.5.1", "pipeline": "2"},
            id="pipeline-version",
        ),
        pytest.param(
            "versions",
            {"torch": "2.13.0", "executorch": None, "pipeline": "1"},
            id="tool-missing",
        ),
        pytest.param("inputs", [{"shape": [2, 4], "dtype": "float32"}], id="input-shape"),
        pytest.param("inputs", [{"shape": [1, 4], "dtype": "float16"}], id="input-dtype"),
        pytest.param(
            "inputs",
            [{"shape": [1, 4], "dtype": "float32"}, {"shape": [1, 4], "dtype": "float32"}],
            id="input-count",
        ),
    ],
)
def test_build_key_changes_with_each_part(field: str, value: Any) -> None:
    assert build_key(**dict(BASE, **{field: value})) != build_key(**BASE)


def test_build_key_from_real_input_specs() -> None:
    small = input_specs([torch.zeros(1, 4)])
    large = input_specs([torch.zeros(8, 4)])
    assert small == BASE["inputs"]
    assert build_key(**dict(BASE, inputs=small)) == build_key(**BASE)
    assert build_key(**dict(BASE, inputs=large)) != build_key(**BASE)


class _NonPersistent(torch.nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.register_buffer("t", torch.full((3,), value), persistent=False)
        self.const = torch.full((2,), value)
        self.cfg = {"k": value}
        self.dt = torch.float16 if value > 1.5 else torch.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.t


def test_non_persistent_buffers_tensor_attrs_dicts_and_dtypes_count() -> None:
    assert model_fingerprint(_NonPersistent(1.0)) != model_fingerprint(_NonPersistent(2.0))
    assert model_fingerprint(_NonPersistent(1.0)) == model_fingerprint(_NonPersistent(1.0))
