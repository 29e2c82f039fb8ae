"""A test double of the Arm Corstone FVPs running upstream's semihosting ``arm_executor_runner``.

Test tool only: never offered as a board. It takes the FVP's parameters, follows
the runner's semihosting protocol (``-m``/``-i``/``-o`` files in
``semihosting-cwd``, ``out-<i>.bin``, ``etdump.bin``), prints log lines in the
runner's format, and executes the program with the real ExecuTorch runtime, so
only programs of portable operators run (no Ethos-U delegate).

It misbehaves on request, by ``ET_HIL_FVP_DOUBLE_MODE``:
``hang``, ``timelimit``, ``crash``, ``hardfault``, ``truncate``, ``corrupt_etdump``,
``launch_error``, ``flaky_launch`` (fails once per run folder, then works).
Facts from ExecuTorch's backends/arm/test/runner_utils.py (the FVP's parameters)
and examples/arm/executor_runner/arm_executor_runner.cpp (semihosting, log lines).
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

# The parameters each FVP knows (subset used by upstream's drivers).
SSE300 = {
    "ethosu.num_macs",
    "ethosu.extra_args",
    "mps3_board.visualisation.disable-visualisation",
    "mps3_board.telnetterminal0.start_telnet",
    "mps3_board.uart0.out_file",
    "mps3_board.uart0.shutdown_on_eot",
    "cpu0.semihosting-enable",
    "cpu0.semihosting-stack_base",
    "cpu0.semihosting-heap_limit",
    "cpu0.semihosting-cwd",
    "cpu0.semihosting-cmd_line",
}
SSE320 = {
    "mps4_board.subsystem.ethosu.num_macs",
    "mps4_board.subsystem.ethosu.extra_args",
    "mps4_board.visualisation.disable-visualisation",
    "vis_hdlcd.disable_visualisation",
    "mps4_board.telnetterminal0.start_telnet",
    "mps4_board.uart0.out_file",
    "mps4_board.uart0.unbuffered_output",
    "mps4_board.uart0.shutdown_on_eot",
    "mps4_board.subsystem.cpu0.semihosting-enable",
    "mps4_board.subsystem.cpu0.semihosting-stack_base",
    "mps4_board.subsystem.cpu0.semihosting-heap_limit",
    "mps4_board.subsystem.cpu0.semihosting-cwd",
    "mps4_board.subsystem.cpu0.semihosting-cmd_line",
}
PLATFORMS = {
    "FVP_Corstone_SSE-300_Ethos-U55": (SSE300, "cpu0.", "11.27.42", (32, 64, 128, 256)),
    "FVP_Corstone_SSE-300_Ethos-U65": (SSE300, "cpu0.", "11.27.42", (256, 512)),
    "FVP_Corstone_SSE-320": (
        SSE320,
        "mps4_board.subsystem.cpu0.",
        "11.27.25",
        (128, 256, 512, 1024, 2048),
    ),
}
CMDLINE_LIMIT = 256


def log(level: str, line: int, function: str, message: str) -> None:
    """One ET_LOG line: "%c [executorch:%s:%lu %s()] %s" (CRLF like the real UART)."""
    sys.stdout.write(
        f"{level} [executorch:arm_executor_runner.cpp:{line} {function}()] {message}\r\n"
    )
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> int:
    sys.stdout.write(f"Error: {message}\n")
    sys.stdout.flush()
    return code


def parse(argv: list[str]) -> tuple[dict[str, str], str | None, int | None] | str:
    params: dict[str, str] = {}
    elf = None
    timelimit = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-C":
            key, _, value = argv[i + 1].partition("=")
            params[key] = value
            i += 2
        elif arg == "-a":
            elf = argv[i + 1]
            i += 2
        elif arg == "--timelimit":
            timelimit = int(argv[i + 1])
            i += 2
        elif arg == "--data":
            i += 2
        else:
            return f"unknown option '{arg}'"
    return params, elf, timelimit


def run_program(cwd: Path, model: str, inputs: list[str], out: str, mode: str) -> int:
    import importlib.util

    import torch

    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the FVP double needs executorch installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    libraries = sorted((root / "kernels" / "quantized").glob("**/*quantized_ops_aot_lib.*"))
    if libraries:
        torch.ops.load_library(str(libraries[0]))
    from executorch.extension.pybindings import _C

    pte = cwd / model
    if not pte.exists():
        log("F", 555, "load_file", f"Could not open file {model} (errno: 2) for reading, exiting!")
        return 1
    log("I", 1461, "main", f"Reading pte model from file {model}")
    data = pte.read_bytes()
    log("I", 1523, "main", f"PTE @ 0x70000000 [----{data[4:8].decode(errors='replace')}]")
    bundled: list[bytes] | None = None
    if data[4:8] == b"BP08":  # a BundleIO program: its inputs come from test case 0
        from executorch.devtools.bundled_program.serialize import (
            deserialize_from_flatbuffer_to_bundled_program,
        )

        bundle = deserialize_from_flatbuffer_to_bundled_program(data)
        pte = cwd / ".fvp_double_program.pte"
        pte.write_bytes(bundle.program)
        case = bundle.method_test_suites[0].test_cases[0]
        bundled = [bytes(value.val.data) for value in case.inputs]
        log("I", 886, "runner_init", "Input testset[0] from bundled bpte")
    module = _C._load_for_executorch(str(pte), enable_etdump=True, debug_buffer_size=0)
    meta = module.method_meta("forward")
    log("I", 700, "runner_init", "Running method forward")
    if bundled is None and (not inputs or meta.num_inputs() != len(inputs)):
        log(
            "E",
            463,
            "prepare_input_tensors",
            "Wrong number of inputs allocated compared to method",
        )
        log("F", 898, "runner_init", "Failed to prepare inputs 0x12")
        return 1
    tensors = []
    dtypes = {
        0: torch.uint8,
        1: torch.int8,
        2: torch.int16,
        3: torch.int32,
        4: torch.int64,
        6: torch.float32,
        7: torch.float64,
        11: torch.bool,
    }
    for k in range(meta.num_inputs()):
        info = meta.input_tensor_meta(k)
        if bundled is not None:
            raw = bundled[k]
        else:
            log("I", 1480, "main", f"Reading input tensor {k} from file {inputs[k]}")
            raw = (cwd / inputs[k]).read_bytes()
        if len(raw) != info.nbytes():
            log(
                "E",
                495,
                "prepare_input_tensors",
                f"input size ({len(raw)}) and tensor size ({info.nbytes()}) mismatch!",
            )
            log("F", 898, "runner_init", "Failed to prepare inputs 0x12")
            return 1
        tensor = torch.frombuffer(bytearray(raw), dtype=dtypes[int(info.dtype())])
        tensors.append(tensor.reshape(list(info.sizes())))
    log("I", 905, "runner_init", "Input prepared.")
    log("I", 1328, "run_model", "Starting running 1 inferences...")
    if mode == "crash":
        log(
            "F",
            1346,
            "run_model",
            "In function run_model(), assert failed (status == Error::Ok): "
            "Execution of method forward failed with status 0x12",
        )
        return 1
    if mode == "hardfault":
        sys.stdout.write(
            "Hard fault. irq=-13, pc=0x10001a2c, lr=0x10003f01, xpsr=0x61000000, "
            "sp=0x3007ffa0\r\n            cfsr=0x00008200 bfar=0xdeadbeef mmfar=0x00000000\r\n"
            "Application exit code: 1.\r\n"
        )
        sys.stdout.flush()
        return 0
    try:
        outputs = module.run_method("forward", tuple(tensors))
    except RuntimeError as exc:
        # Programs with an Ethos-U delegate stop here: the double has no NPU.
        log(
            "F",
            1346,
            "run_model",
            "In function run_model(), assert failed (status == "
            f"Error::Ok): Execution of method forward failed ({exc}; the FVP double runs "
            "portable-operator programs only)",
        )
        return 1
    log("I", 1351, "run_model", "1 inferences finished")
    log("I", 1060, "print_outputs", f"{len(outputs)} outputs: ")
    for i, output in enumerate(outputs):
        # the runner writes tensor.nbytes() from the data pointer: memory (dim) order
        payload = output.permute(output.dim_order()).contiguous().numpy().tobytes()
        if mode == "truncate":
            payload = payload[: len(payload) // 2]
        log("I", 1104, "print_outputs", f"Writing output to file: {out}-{i}.bin")
        (cwd / f"{out}-{i}.bin").write_bytes(payload)
    etdump = cwd / "etdump.bin"
    module.write_etdump_result_to_file(str(etdump), "")
    if mode == "corrupt_etdump":
        etdump.write_bytes(b"\x00\x01ETDUMP-but-not-really" * 8)
    log("I", 1550, "main", "Program complete, exiting.")
    return 0


def main() -> int:
    name, args = Path(sys.argv[0]).name, sys.argv[1:]
    if args[:1] == ["--as"]:  # from launcher.sh: the name it was started as
        name, args = args[1], args[2:]
    if name not in PLATFORMS:
        return fail(f"fvp_double: unknown FVP name {name}")
    known, prefix, version, macs = PLATFORMS[name]
    if args == ["--version"]:
        print(f"Fast Models [{version} (double)]")
        return 0
    mode = os.environ.get("ET_HIL_FVP_DOUBLE_MODE", "")
    parsed = parse(args)
    if isinstance(parsed, str):
        return fail(parsed)
    params, elf, timelimit = parsed
    for key in params:
        if key not in known:
            return fail(f"unknown parameter '{key}' for {name}")
    if mode == "launch_error":
        return fail("license checkout failed: no licence available (double)")
    cwd = Path(params.get(prefix + "semihosting-cwd", "."))
    if mode == "flaky_launch":
        marker = cwd / ".fvp_double_launched"
        if not marker.exists():
            marker.write_text("1")
            return fail("license checkout failed: server busy (double)")
    num_macs_key = next(k for k in params if k.endswith("ethosu.num_macs"))
    if int(params[num_macs_key]) not in macs:
        return fail(f"{num_macs_key}={params[num_macs_key]} is not a valid MAC count")
    if elf is None or not Path(elf).exists():
        return fail(f"could not load application '{elf}'")
    if timelimit is None:
        return fail("the double needs --timelimit")
    if mode == "hang":
        time.sleep(10**6)
    if mode == "timelimit":
        print("Info: Simulation is stopping. Reason: CPU time has been exceeded.")
        return 0
    cmd_line = params.get(prefix + "semihosting-cmd_line", "").strip("'")
    if len(cmd_line) > CMDLINE_LIMIT:
        cmd_line = cmd_line[:CMDLINE_LIMIT]  # what the real FVP does
    argv = shlex.split(cmd_line)
    log("I", 1406, "main", "Running executor with parameter:")
    if len(argv) < 7:
        log("F", 1415, "main", "Not right number of parameters!")
        return 1
    model, inputs, out = None, [], None
    for flag, value in zip(argv[1::2], argv[2::2], strict=False):
        log("I", 1426, "main", f"   {flag} {value}")
        if flag == "-m":
            model = value
        elif flag == "-i":
            inputs.append(value)
        elif flag == "-o":
            out = value
    if model is None or out is None:
        log("F", 1415, "main", "Not right number of parameters!")
        return 1
    return run_program(cwd, model, inputs, out, mode)


if __name__ == "__main__":
    sys.exit(main())
