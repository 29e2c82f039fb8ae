"""The pytest plugin, driven through pytester: matrix, skips, records, verdicts, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import host_workers

ROOT = Path(__file__).resolve().parent.parent

HOST2 = """
name = "host2"
kind = "host"
target = "portable"
"""


# Tests that build programs run pytest in a subprocess: an in-process pytester
# run unloads the modules it imported, and torch cannot be imported twice.


def records(pytester: pytest.Pytester) -> list[dict]:
    path = pytester.path / "et-hil-results" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_matrix_runs_each_test_once_per_board(et_pytester):
    et_pytester.makefile(".toml", host2=HOST2)
    et_pytester.makepyfile(
        """
        def test_where(board):
            assert board.spec.name in ("host", "host2")
        """
    )
    result = et_pytester.runpytest(
        "--et-board=host", "--et-board-file=host2.toml", "--et-board=host2", "-v"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_where?host? PASSED*", "*test_where?host2? PASSED*"])


def test_old_option_spellings_still_work_and_say_what_to_type(et_pytester):
    et_pytester.makefile(".toml", host2=HOST2)
    et_pytester.makepyfile("def test_where(board):\n    assert board.spec.name == 'host2'\n")
    result = et_pytester.runpytest(
        "--board-file=host2.toml", "--board", "host2", "-W", "always", "-v"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*EtHilDeprecationWarning: --board-file is deprecated: use --et-board-file*",
            "*EtHilDeprecationWarning: --board is deprecated: use --et-board*",
        ]
    )
    # the new spellings warn of nothing
    result = et_pytester.runpytest("--et-board-file=host2.toml", "--et-board=host2", "-W", "always")
    result.assert_outcomes(passed=1)
    assert "deprecated" not in result.stdout.str()


def test_help_lists_one_spelling_per_option_all_with_the_prefix(et_pytester):
    result = et_pytester.runpytest("--help")
    text = result.stdout.str()
    group = text[text.index("ExecuTorch hardware-in-the-loop (et-hil):") :]
    group = group[: group.index("\n\n")]
    # the first word of each line: the option (help text wraps below it, indented)
    options = [
        line.split()[0].split("=")[0] for line in group.splitlines() if line.startswith("  --")
    ]
    assert "--et-board" in options
    assert "--et-fvp-backend" in options  # a kind's own option, prefixed too
    assert [o for o in options if not o.startswith("--et-")] == []
    assert "--board " not in group


def test_a_kind_option_without_the_prefix_is_refused():
    from et_hil.errors import ConfigError
    from et_hil.pytest_plugin.options import EtOptionGroup

    added = []

    class Group:
        def addoption(self, *names, **kwargs):
            added.append(names)

    with pytest.raises(ConfigError, match=r"option --toy-speed: .* adds --et-toy-speed"):
        EtOptionGroup(Group()).addoption("--toy-speed", action="store_true")  # type: ignore[arg-type]
    assert added == []


def test_default_board_is_host(et_pytester):
    et_pytester.makepyfile("def test_where(board):\n    assert board.spec.name == 'host'\n")
    result = et_pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_where?host? PASSED*"])


def test_unknown_board_is_a_usage_error_listing_known_boards(et_pytester):
    et_pytester.makepyfile("def test_x(board):\n    pass\n")
    result = et_pytester.runpytest("--et-board=nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown board 'nosuch'*Known boards: *corstone320*host*tosa*"])


def test_malformed_board_file_names_file_and_field(et_pytester):
    et_pytester.makefile(".toml", bad='name = "b"\nkind = "fpga"\ntarget = "portable"\n')
    et_pytester.makepyfile("def test_x(board):\n    pass\n")
    result = et_pytester.runpytest("--et-board-file=bad.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*board file */bad.toml: field 'kind' = 'fpga'*"])


def test_unavailable_board_skips_with_reason_or_fails_when_required(et_pytester):
    et_pytester.makepyfile("def test_x(board):\n    pass\n")
    result = et_pytester.runpytest("--et-board=corstone320", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*board 'corstone320' cannot run here*FVP_Corstone_SSE-320*not on PATH*"]
    )
    [record] = records(et_pytester)
    assert record["outcome"] == "skipped"
    assert record["failure_class"] == "board_unavailable"

    result = et_pytester.runpytest("--et-board=corstone320", "--et-require-boards")
    result.assert_outcomes(errors=1)  # it fails in the board fixture: a setup error
    result.stdout.fnmatch_lines(["*cannot run here*--et-require-boards*"])
    [record] = records(et_pytester)
    assert (record["outcome"], record["failure_class"]) == ("error", "board_unavailable")


def test_needs_marker_skips_boards_without_the_capability(et_pytester):
    et_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.et_needs("npu")
        def test_npu(board):
            pass

        @pytest.mark.et_needs("etdump")
        def test_etdump(board):
            pass
        """
    )
    result = et_pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*board 'host' lacks npu*"])


def test_misused_marker_is_a_usage_error(et_pytester):
    et_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.et_needs("wings")
        def test_x(board):
            pass
        """
    )
    result = et_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*et_needs takes capability names*wings*"])


@pytest.mark.slow
def test_check_records_metrics_and_junit_properties(et_pytester):
    et_pytester.makepyfile(
        """
        import tinymodels as m

        def test_float(et_check):
            result = et_check(m.tiny(), m.x())
            assert result.passed

        def test_int8(et_check):
            et_check(m.tiny(), m.x(), quantize="int8")
        """
    )
    result = et_pytester.runpytest_subprocess("--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    by_test = {r["test"].split("::")[1]: r for r in records(et_pytester)}
    assert set(by_test) == {"test_float[host]", "test_int8[host]"}
    float_record, int8_record = by_test["test_float[host]"], by_test["test_int8[host]"]
    assert float_record["outcome"] == "passed"
    assert float_record["failure_class"] is None
    assert float_record["artifact"]["target"] == "portable"
    assert float_record["artifact"]["pte_bytes"] > 0
    assert float_record["timings"]["fidelity"] == "host-wall"
    assert [c["reference"] for c in int8_record["comparisons"]] == [
        "fake_quant",
        "eager_float",
        "quantization",
    ]
    assert int8_record["comparisons"][0]["metrics"][0]["max_lsb"] <= 1.0
    assert float_record["versions"]["executorch"] == "1.5.1"

    properties = {
        p.get("name"): p.get("value")
        for p in ET.parse(et_pytester.path / "junit.xml").iter("property")
    }
    assert properties["et_verdict"] == "pass"
    assert "et_fake_quant_out0_max_lsb" in properties
    assert "et_eager_float_out0_snr_db" in properties


@pytest.mark.slow
@pytest.mark.timeout(240)  # took 72 s
def test_second_run_comes_from_the_cache(et_pytester):
    et_pytester.makepyfile(
        """
        import tinymodels as m

        def test_a(et_check):
            et_check(m.tiny(seed=11), m.x())
        """
    )
    et_pytester.runpytest_subprocess().assert_outcomes(passed=1)
    result = et_pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    [record] = records(et_pytester)
    assert record["artifact"]["cache_hit"] is True
    result.stdout.fnmatch_lines(["*host*programs from cache 1/1*"])


@pytest.mark.slow
@pytest.mark.timeout(180)  # took 43 s
def test_program_differing_from_its_reference_fails_with_a_table(et_pytester):
    et_pytester.makepyfile(
        """
        import tinymodels as m

        def test_mismatch(et_check):
            # The program is built from scale=1.0; the reference multiplies by 1.5.
            et_check(m.tiny(), m.x(), reference=m.tiny(scale=1.5))
        """
    )
    result = et_pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*model 'Tiny' on board 'host': outputs differ from the reference",
            "*reference*output*metric*value*limit*",
            "*eager_float*out?0?*max_abs_err*FAIL*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    [record] = records(et_pytester)
    assert record["failure_class"] == "numeric_mismatch"
    assert record["comparisons"][0]["passed"] is False


@pytest.mark.slow
def test_tolerance_marker_overrides_the_board_default(et_pytester):
    et_pytester.makepyfile(
        """
        import pytest
        import tinymodels as m

        @pytest.mark.et_tolerance(atol=10.0)
        def test_loose(et_check):
            et_check(m.tiny(), m.x(), reference=m.tiny(scale=1.5))
        """
    )
    et_pytester.runpytest_subprocess().assert_outcomes(passed=1)


@pytest.mark.slow
def test_bad_models_and_inputs_end_in_clear_messages(et_pytester):
    et_pytester.makepyfile(
        """
        import torch
        import tinymodels as m

        def test_export_rejected(et_check):
            et_check(m.DataDependent(), m.x())

        def test_wrong_shape(et_check):
            et_check(m.tiny(), m.x(shape=(2, 5)))
        """
    )
    result = et_pytester.runpytest_subprocess()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*BuildError [[]build_error[]]: torch.export rejected model 'DataDependent'*",
            "*BuildError [[]build_error[]]: model 'Tiny' fails in eager PyTorch on its example "
            "inputs ([[]2, 5[]] float32)*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert {r["failure_class"] for r in records(et_pytester)} == {"build_error"}


@pytest.mark.slow
def test_runtime_abort_fails_one_test_and_the_session_goes_on(et_pytester):
    et_pytester.makepyfile(
        """
        import tinymodels as m

        def test_1_abort(et_check):
            # 16 bytes cannot hold the intermediate outputs: the runtime aborts.
            et_check(m.tiny(), m.x(), debug_buffer_size=16)

        def test_2_after(et_check):
            et_check(m.tiny(), m.x())
        """
    )
    result = et_pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        ["*RunCrashed [[]crash[]]: host board: the runtime killed by SIGABRT*"]
    )
    result.stdout.fnmatch_lines(["*Ran out of space to store intermediate outputs*"])
    assert host_workers(et_pytester) == []


@pytest.mark.slow
@pytest.mark.timeout(480)  # took 150 s
def test_hung_run_times_out_and_the_worker_is_replaced(et_pytester):
    et_pytester.makepyfile(
        """
        import torch
        import tinymodels as m

        def test_1_slow(et_check):
            et_check(m.Slow(), (torch.randn(1024, 1024) * 0.01,))

        def test_2_after(et_check):
            et_check(m.tiny(), m.x())
        """
    )
    result = et_pytester.runpytest_subprocess("--et-run-timeout=0.5")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*RunTimeout [[]timeout[]]: host board: no result after 0.5 s*"])
    failure = next(r for r in records(et_pytester) if r["outcome"] == "failed")
    assert failure["failure_class"] == "timeout"
    assert host_workers(et_pytester) == []


@pytest.mark.slow
@pytest.mark.timeout(240)  # took 76 s
def test_two_workers_share_one_cache_and_write_every_record(et_pytester):
    et_pytester.makepyfile(
        """
        import pytest
        import tinymodels as m

        @pytest.mark.parametrize("seed", [0, 1, 2, 3])
        @pytest.mark.parametrize("quantize", [None, "int8"])
        def test_many(et_check, seed, quantize):
            et_check(m.tiny(seed=seed % 2), m.x(seed), quantize=quantize)
        """
    )
    result = et_pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=8)
    rows = records(et_pytester)
    assert len(rows) == 8
    assert {r["worker"] for r in rows} == {"gw0", "gw1"}
    assert len({r["run_id"] for r in rows}) == 1
    assert host_workers(et_pytester) == []
    # Same model and weights on different example values: float programs share a
    # key (only input specs count); int8 ones differ by calibration data.
    keys = {r["artifact"]["key"] for r in rows}
    assert len(keys) == 2 + 4


def test_plugin_import_does_not_import_torch():
    code = (
        "import sys, et_hil.pytest_plugin.plugin; "
        "print('torch' in sys.modules, 'executorch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_models_a_program_cannot_express_are_refused_by_name(et_pytester):
    et_pytester.makepyfile(
        """
        import torch
        from torch import nn

        class WithNone(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x), None

        class NoOutputs(nn.Module):
            def forward(self, x):
                return ()

        def test_none_in_outputs(et_check):
            et_check(WithNone().eval(), (torch.randn(2, 4),))

        def test_no_outputs(et_check):
            et_check(NoOutputs().eval(), (torch.randn(2, 4),))
        """
    )
    result = et_pytester.runpytest_subprocess()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*BuildError [[]build_error[]]: model 'WithNone' returns NoneType at output[[]1[]]*",
            "*BuildError [[]build_error[]]: model 'NoOutputs' returns no tensors*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "AttributeError" not in result.stdout.str()
    assert "graph_output_allocated" not in result.stdout.str()


@pytest.mark.slow
def test_int8_of_a_model_with_nothing_to_quantize_says_so(et_pytester):
    et_pytester.makepyfile(
        """
        import torch
        from torch import nn

        class Transpose(nn.Module):
            def forward(self, x):
                return x.permute(1, 0)

        def test_nothing_to_quantize(et_check):
            result = et_check(Transpose().eval(), (torch.randn(2, 4),), quantize="int8")
            assert not result.artifact.quantized
            assert [c.reference for c in result.comparisons] == ["eager_float"]
        """
    )
    result = et_pytester.runpytest_subprocess("-W", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*found nothing to quantize in this model*"])
    [record] = records(et_pytester)
    assert record["artifact"]["quantization"] is None  # not reported as a quantized test
    assert "nothing to quantize" in record["quantization_note"]


@pytest.mark.slow
def test_full_delegation_marker_does_not_apply_where_nothing_can_be_delegated(et_pytester):
    et_pytester.makepyfile(
        """
        import pytest
        import tinymodels as m

        @pytest.mark.et_full_delegation
        def test_npu_only(et_check):
            et_check(m.tiny(), m.x(), quantize="int8")
        """
    )
    result = et_pytester.runpytest_subprocess("--et-board=host")
    result.assert_outcomes(passed=1)  # the check itself still ran on host
    [record] = records(et_pytester)
    assert record["full_delegation"] == "not applicable: target portable has no delegate"
    assert record["ran"] is True


def test_tests_skipped_by_a_marker_are_summarised_under_their_board(et_pytester):
    et_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.skip(reason="not today")
        def test_skipped(board):
            pass
        """
    )
    result = et_pytester.runpytest("--et-board=host", "--et-board=tosa")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["host *skipped 1*", "tosa *skipped 1*"])
    assert "?" not in {r["board"] for r in records(et_pytester)}


@pytest.mark.slow
@pytest.mark.timeout(180)  # took 40 s
def test_two_checks_in_one_test_are_both_recorded_and_in_junit(et_pytester):
    et_pytester.makepyfile(
        """
        import tinymodels as m

        from et_hil.programs.faults import Fault

        def test_two(et_check):
            et_check(m.tiny(), m.x())
            et_check(m.tiny(), m.x(), quantize="int8",
                     fault=Fault("quantize_per_tensor_1", factor=3.0))
        """
    )
    result = et_pytester.runpytest_subprocess("--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    [record] = records(et_pytester)
    first, second = record["checks"]
    assert first["passed"] is True
    assert first["artifact"]["quantization"] is None
    assert second["failure_class"] == "numeric_mismatch"
    assert second["artifact"]["quantization"]["scheme"] == "int8"
    assert first["artifact"]["key"] != second["artifact"]["key"]
    assert record["artifact"] == second["artifact"]  # the top level is the failed check
    assert len(record["comparisons"]) == 4  # 1 (float) + 3 (int8)
    assert second["repro"].endswith("-check2")

    properties = {
        p.get("name"): p.get("value")
        for p in ET.parse(et_pytester.path / "junit.xml").iter("property")
    }
    assert properties["et_board"] == "host"
    assert properties["et_failure_class"] == "numeric_mismatch"
    assert "executorch=1.5.1" in properties["et_versions"]
    assert properties["et_repro"] == second["repro"]


@pytest.mark.slow
@pytest.mark.timeout(180)  # took 48 s
def test_library_noise_stays_out_of_a_users_output(pytester, shared_cache):
    # A user's repository: no filterwarnings of ours, only the plugin.
    pytester.makeini(f"[pytest]\naddopts = -p no:cacheprovider --et-build-cache={shared_cache}\n")
    pytester.makepyfile(
        """
        import torch
        from torch import nn

        def test_fails(et_check):
            torch.manual_seed(0)
            et_check(nn.Linear(8, 4).eval(), (torch.randn(2, 8),), quantize="int8")
            assert False, "the user's own assertion"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "the user's own assertion" in out
    assert "torch.__trace" not in out
    assert "DeprecationWarning" not in out
    assert "FutureWarning" not in out


@pytest.mark.slow
def test_a_failing_check_shows_its_per_layer_table(et_pytester):
    """--et-debug=on-failure (the default): a board that computes a layer wrongly (a
    fault put into the program) fails with the table's verdict and rows in its
    message, the whole table in the record, the files in the repro folder. A failure
    of the model's quantization quality alone (the board agrees with fake-quant)
    starts no pass, and says why."""
    et_pytester.makepyfile(
        """
        import tinymodels as m

        from et_hil.programs.faults import Fault

        def test_wrong_layer(et_check):
            # Tiny's linear layer (its output is the second quantization point)
            # computes with weights 3x too large, in the program only
            et_check(m.tiny(), m.x(), quantize="int8",
                     fault=Fault("quantize_per_tensor_1", factor=3.0))

        def test_model_too_coarse(et_check):
            # the board is right; the test holds the int8 model to 80 dB from float
            et_check(m.tiny(), m.x(), quantize="int8", vs_float={"min_snr_db": 80})

        def test_fine(et_check):
            et_check(m.tiny(), m.x(), quantize="int8")
        """
    )
    result = et_pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*first divergent layer: #1 fc aten.linear*",
            "*per-layer table: *divergence.csv",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*the quantized model is further from float than this test allows*",
            "*per-layer table: not made (the board agrees with fake-quant; only the "
            "quantization-quality limit failed)*",
        ]
    )
    by_test = {r["test"].split("::")[1]: r for r in records(et_pytester)}
    failed = by_test["test_wrong_layer[host]"]
    coarse, fine = by_test["test_model_too_coarse[host]"], by_test["test_fine[host]"]
    assert failed["failure_class"] == "numeric_mismatch"
    debug = failed["debug"]
    assert debug["first_divergent"]["module_path"] == "fc"
    assert {Path(f).name for f in debug["files"]} == {"divergence.json", "divergence.csv"}
    assert all(Path(f).parent == Path(failed["repro"]) for f in debug["files"])
    assert coarse["failure_class"] == "quantization_quality"
    assert "debug" not in coarse
    assert "debug" not in fine  # passing checks get no pass by default


@pytest.mark.slow
@pytest.mark.timeout(180)  # took 40 s
def test_et_debug_fixture_names_a_faulty_layer(et_pytester):
    et_pytester.makepyfile(
        """
        import torch
        from et_hil.programs.taps import Fault
        import tinymodels as m

        class Two(torch.nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.a = torch.nn.Linear(8, 8)
                self.b = torch.nn.Linear(8, 4)

            def forward(self, x):
                return self.b(torch.relu(self.a(x)))

        def test_layers(et_debug):
            clean = et_debug(Two(), m.x(), quantize="int8")
            assert clean.first_divergent is None
            layer = next(r for r in clean.rows if r.module_path == "b")
            faulty = et_debug(Two(), m.x(), quantize="int8", fault=Fault(layer.node))
            assert faulty.first_divergent.node == layer.node
        """
    )
    result = et_pytester.runpytest_subprocess("--et-debug=off")
    result.assert_outcomes(passed=1)
    (row,) = records(et_pytester)
    clean, faulty = row["debug_reports"]
    assert clean["summary"].startswith("no layer diverges on its own")
    assert faulty["summary"].startswith("first divergent layer")
    assert faulty["first_divergent"]["module_path"] == "b"


@pytest.mark.slow
@pytest.mark.timeout(240)  # took 74 s
def test_outputs_within_rounding_are_confirmed_layer_by_layer(et_pytester):
    """A layer requantized one step off in the MLPerf Tiny anomaly autoencoder (its
    late layer, net.26) moves the 640 outputs by at most 1 LSB on host: the rounding
    allowance passes that at the outputs (the campaign measured it). The verdict then
    confirms the outputs layer by layer, and the layer that diverges on its own fails
    the check, named. The clean model is bit-exact with fake-quant on host: no pass is
    made for it. ``--et-confirm=off`` judges the outputs alone (and passes the fault)."""
    et_pytester.makepyfile(
        f"""
        import sys

        sys.path.insert(0, {str(ROOT / "suites")!r})
        import real_models

        from et_hil.programs.faults import Fault

        ENTRY = real_models.REAL_MODELS["autoencoder_ad"]

        def test_clean(et_check):
            model, x = ENTRY.make()
            et_check(model, x, quantize="int8", calibration=ENTRY.calibration())

        def test_requantized_one_step_off(et_check):
            model, x = ENTRY.make()
            et_check(model, x, quantize="int8", calibration=ENTRY.calibration(),
                     fault=Fault("quantize_per_tensor_9", kind="requantize", steps=1))
        """
    )
    result = et_pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*outputs within rounding of fake-quant, but a layer diverges on its own*",
            "*layers*#9 net.26 aten.relu*error_on_its_own*FAIL*",
            "*first divergent layer: #9 net.26 aten.relu*",
        ]
    )
    by_test = {r["test"].split("::")[1]: r for r in records(et_pytester)}
    clean, faulty = by_test["test_clean[host]"], by_test["test_requantized_one_step_off[host]"]
    assert "debug" not in clean  # bit-exact outputs: nothing to confirm
    assert [c["reference"] for c in clean["comparisons"]] == [
        "fake_quant", "eager_float", "quantization"
    ]  # fmt: skip
    assert faulty["failure_class"] == "numeric_mismatch"
    fake_quant = next(c for c in faulty["comparisons"] if c["reference"] == "fake_quant")
    assert fake_quant["passed"]  # the outputs alone pass...
    layers = next(c for c in faulty["comparisons"] if c["reference"] == "layers")
    assert not layers["passed"]  # ...the per-layer pass does not
    assert faulty["debug"]["first_divergent"]["node"] == "quantize_per_tensor_9"

    off = et_pytester.runpytest_subprocess("--et-confirm=off", "-k", "one_step_off")
    off.assert_outcomes(passed=1)
