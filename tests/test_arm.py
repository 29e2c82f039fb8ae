"""Arm targets, the tosa board, Vela estimates, partition reports and the fit check.

Every number here comes from real runs of the Arm backend, Vela and the TOSA
reference model of the pinned wheels.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

TWO_PARTITIONS = """
import torch
from torch import nn


class TwoPartitions(nn.Module):
    # Ethos-U55 has no bilinear resize: the upsample stays on the CPU, splitting
    # the convolutions into two NPU partitions.
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        x = self.conv1(x)
        x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
        return self.conv2(x)


def case():
    torch.manual_seed(0)
    return TwoPartitions().eval(), (torch.randn(1, 4, 8, 8),)
"""


def records(pytester: pytest.Pytester) -> list[dict]:
    path = pytester.path / "et-hil-results" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.timeout(180)  # took 60 s
def test_tosa_board_matches_fake_quant_and_reports_timing(et_pytester):
    et_pytester.makepyfile(
        """
        import torch
        import tinymodels as m

        def test_conv(et_check):
            torch.manual_seed(0)
            conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
            result = et_check(conv.eval(), (torch.randn(1, 3, 8, 8),), quantize="int8")
            assert result.run.fidelity == "tosa-reference"
            assert result.run.facts["delegate_calls"] == 1
            assert result.run.timings["delegate_s"] > 0

        def test_float_is_skipped(et_check):
            et_check(m.tiny(), m.x())
        """
    )
    result = et_pytester.runpytest_subprocess("--et-board=tosa", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*board 'tosa' (target tosa-int) runs quantized programs only*"])
    conv = next(r for r in records(et_pytester) if "test_conv" in r["test"])
    assert conv["delegation"]["delegated_subgraphs"] == 1
    assert conv["delegation"]["cpu_fallback"] == {}
    fake_quant = conv["comparisons"][0]
    assert fake_quant["reference"] == "fake_quant"
    assert fake_quant["metrics"][0]["max_lsb"] <= 1.0


@pytest.mark.timeout(180)  # took 56 s
def test_build_only_records_vela_estimates_per_partition(et_pytester):
    et_pytester.makepyfile(twoparts=TWO_PARTITIONS)
    et_pytester.makepyfile(
        """
        import twoparts

        def test_two(et_check):
            et_check(*twoparts.case(), quantize="int8")
        """
    )
    result = et_pytester.runpytest_subprocess(
        "--et-board=corstone300", "--et-build-only", "--junitxml=junit.xml", "-rs"
    )
    result.assert_outcomes(skipped=1)
    # one line a test, in the summary: partitions, CPU ops, memory, Vela
    result.stdout.fnmatch_lines(
        ["*::test_two[[]corstone300[]]: built * for corstone300: 2 partition(s) (EthosUBackend, "
         "* ops); CPU ops: *aten.upsample_bilinear2d.vec x1*; file pool * of 60.0 MiB (*%), "
         "method pool * of *, NPU SRAM * of *; Vela * cycles (* NPU), * s; "
         "nothing ran (--et-build-only)"]
    )  # fmt: skip
    [record] = records(et_pytester)
    assert record["ran"] is False
    delegation = record["delegation"]
    assert delegation["delegated_subgraphs"] == 2
    assert delegation["cpu_fallback"] == {"aten.upsample_bilinear2d.vec": 1}
    vela = record["vela"]
    # One folder per partition: two different summaries, not one overwritten twice.
    assert [p["partition"] for p in vela["partitions"]] == ["partition_0", "partition_1"]
    assert vela["partitions"][0]["nn_macs"] != vela["partitions"][1]["nn_macs"]
    assert all(p["accelerator_configuration"] == "Ethos_U55_128" for p in vela["partitions"])
    assert all(p["layers"] for p in vela["partitions"])  # per-layer CSV read
    assert vela["total"]["cycles_total"] == sum(p["cycles_total"] for p in vela["partitions"])
    assert vela["total"]["cycles_total"] > 0
    assert vela["total"]["sram_bytes"] > 0
    junit = (et_pytester.path / "junit.xml").read_text()
    assert f'name="et_vela_cycles" value="{vela["total"]["cycles_total"]}"' in junit
    assert 'name="et_cpu_fallback" value="aten.upsample_bilinear2d.vec"' in junit


def test_full_delegation_required_names_the_leftover_ops(et_pytester):
    et_pytester.makepyfile(twoparts=TWO_PARTITIONS)
    et_pytester.makepyfile(
        """
        import pytest
        import twoparts

        @pytest.mark.et_full_delegation
        def test_two(et_check):
            et_check(*twoparts.case(), quantize="int8")
        """
    )
    result = et_pytester.runpytest_subprocess("--et-board=corstone300", "--et-build-only")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*DelegationError [[]cpu_fallback[]]: board 'corstone300' requires full delegation, "
            "but model 'TwoPartitions' leaves these ops to the CPU: "
            "aten.upsample_bilinear2d.vec x1*"
        ]
    )
    assert records(et_pytester)[0]["failure_class"] == "cpu_fallback"


BIG_MODEL_TEST = """
import torch

def test_big(et_check):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU()).eval()
    et_check(model, (torch.randn(4, 256),), quantize="int8")
"""


@pytest.mark.timeout(240)  # took 75 s
def test_program_too_large_for_flash_fails_before_running(et_pytester):
    # A host-kind board that can run here: the fit check fails the test first.
    et_pytester.makefile(
        ".toml",
        small_host='name = "small-host"\nkind = "host"\ntarget = "portable"\n'
        "[memory]\nflash_bytes = 4096\n",
    )
    et_pytester.makepyfile(BIG_MODEL_TEST)
    result = et_pytester.runpytest_subprocess(
        "--et-board-file=small_host.toml", "--et-board=small-host"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FitError [[]does_not_fit[]]: model 'Sequential' does not fit board 'small-host' "
            "(checked before running): program: .pte is * B (* KiB), flash is 4096 B (4.0 KiB)*"
        ]
    )
    [record] = records(et_pytester)
    assert record["failure_class"] == "does_not_fit"
    assert "timings" not in record  # nothing ran


@pytest.mark.timeout(300)  # took 90 s
def test_npu_sram_overflow_fails_the_fit_check_in_build_only(et_pytester):
    et_pytester.makefile(
        ".toml",
        tiny_npu='name = "tiny-npu"\nkind = "fvp"\ntarget = "ethos-u55-128"\n'
        '[memory]\nsram_bytes = 1024\n[fvp]\nplatform = "corstone300-u55"\n',
    )
    et_pytester.makepyfile(BIG_MODEL_TEST)
    result = et_pytester.runpytest_subprocess(
        "--et-board-file=tiny_npu.toml", "--et-board=tiny-npu", "--et-build-only"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*does not fit board 'tiny-npu'*NPU SRAM: Vela plans * B (* KiB), the board has 1024 B*"]
    )


@pytest.mark.parametrize("target", ["tosa-int", "ethos-u55-128"])
def test_program_bytes_do_not_depend_on_where_they_were_built(tmp_path, target):
    """The same model built under two cache folders of different path lengths is the
    same .pte, byte for byte, and holds neither path (upstream serializes the
    compiler's intermediates folder into the program unless it is stripped; a
    nightly in another checkout then saw every tosa .pte 128 bytes bigger)."""
    import torch

    from et_hil.programs.builder import Builder
    from et_hil.programs.cache import ArtifactCache

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh()).eval()
    inputs = (torch.randn(1, 3, 8, 8),)
    short = tmp_path / "c"
    deep = tmp_path / "a-much-longer-checkout-path" / "with" / "more" / "levels"
    programs = []
    for root in (short, deep):
        artifact = Builder(ArtifactCache(root)).build(
            model, inputs, target=target, board="b", quantize="int8"
        )
        data = artifact.pte_path.read_bytes()
        assert str(root).encode() not in data, f"{root} is inside the {target} program"
        programs.append(data)
    assert programs[0] == programs[1]
