"""A virtual serial board: a test double of a physical board running the
upstream UART ``arm_executor_runner``. Test tool only, never a shipped board.

It serves a pseudo-terminal (symlinked at ``--link``, like a
``/dev/serial/by-id`` name) and prints, byte for byte, what the runner prints
(ExecuTorch's examples/arm/executor_runner/arm_executor_runner.cpp and
arm_perf_monitor.cpp; the hard fault lines are Arm's core_platform's): ``ET_LOG``
lines with CRLF, ``Output[i][j]`` lines, the BundleIO verdict, the Ethos-U PMU report, the
base64 ETDump block and EOT. Programs run on the real ExecuTorch runtime, so
only portable-operator programs run (no NPU; the PMU report says 0 NPU work and
derives CPU cycles from host wall time at ``--cpu-hz``).

Its "flash" is a folder: ``flasher.py`` writes images there and signals it.
On reset (SIGUSR1) it boots: address-mode firmware reads the program at
``--pte-address``; embedded firmware (``--firmware-address``) reads the image
``flasher.py build`` made. It misbehaves on request, through ``<state>/mode``
(``<mode> [count] [seconds]``, consumed one reset at a time):
``noise``, ``drop``, ``disconnect``, ``vanish``, ``hang``, ``hardfault``,
``crash``, ``bundle_fail`` (the runner's own BundleIO check fails and main()
aborts), and ``stale`` (the previous run is replayed when flashing starts, as
if the old firmware were still printing). Lines queue: ``normal 1`` then
``hang 1`` hangs the second run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import queue
import select
import signal
import sys
import time
import tty
from pathlib import Path
from typing import Any

import numpy as np

EMBEDDED_MAGIC = b"VFW1"  # flasher.py build: firmware image = magic + program
ATOL = RTOL = 0.01  # the runner's default compile-time ET_ATOL / ET_RTOL
NOISE = bytes([0xFF, 0x00, 0xFE, 0x13, 0x7E, 0x80, 0x1B, 0x5B, 0xC3, 0x28])
UART_DTYPES = {
    "torch.float32": "float",
    "torch.int32": "int",
    "torch.int8": "char",
    "torch.bool": "bool",
}


class Pty:
    """The board's end of the serial line."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self.connect()

    def connect(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no CR/LF translation before the harness opens it
        os.set_blocking(self.master, False)
        tmp = self.link.with_name(self.link.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self.slave))
        os.replace(tmp, self.link)

    def disconnect(self) -> None:
        """USB unplugged: the device node goes away and readers get EIO."""
        self.link.unlink(missing_ok=True)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.master = self.slave = -1

    def write(self, data: bytes, deadline_s: float = 2.0) -> None:
        """Write like a UART: what nobody reads within ``deadline_s`` is lost."""
        end = time.monotonic() + deadline_s
        while data and self.master >= 0:
            _, ready, _ = select.select([], [self.master], [], max(0.0, end - time.monotonic()))
            if not ready:
                return
            try:
                sent = os.write(self.master, data)
            except BlockingIOError:
                continue
            except OSError:
                return
            data = data[sent:]
        # drain what the harness sends (nothing today) so the line never fills
        with contextlib.suppress(OSError):
            while self.master >= 0 and select.select([self.master], [], [], 0)[0]:
                if not os.read(self.master, 4096):
                    break


class Firmware:
    """The upstream runner's behaviour, printing to a :class:`Pty`."""

    def __init__(self, args: argparse.Namespace, pty: Pty) -> None:
        self.args = args
        self.pty = pty
        self.state = Path(args.state)
        self.transcript = bytearray()  # this run's bytes (replayed by "stale")
        self.previous = b""
        self.mode = ""
        self.drop_done = False

    # ---------------------------------------------------------------- output

    def raw(self, data: bytes) -> None:
        self.transcript += data
        self.pty.write(data)
        if self.mode == "noise":
            self.pty.write(NOISE + b"\r\n")

    def log(
        self,
        level: str,
        function: str,
        message: str,
        line: int = 1,
        file: str = "arm_executor_runner.cpp",
    ) -> None:
        self.raw(f"{level} [executorch:{file}:{line} {function}()] {message}\r\n".encode())

    def printf(self, text: str) -> None:
        self.raw(text.encode() + b"\r\n")

    # ---------------------------------------------------------------- mode

    def take_mode(self) -> tuple[str, float]:
        """The misbehaviour for this reset. ``<state>/mode`` is a queue of lines
        ``<mode> [count] [seconds]`` (``normal`` for none); the first line's count
        is decremented, and the line is dropped when it is used up."""
        path = self.state / "mode"
        try:
            lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
        except OSError:
            return "", 0.0
        if not lines:
            return "", 0.0
        words = lines[0]
        count = int(words[1]) if len(words) > 1 else 1
        seconds = float(words[2]) if len(words) > 2 else 0.0
        rest = lines[1:] if count <= 1 else [[words[0], str(count - 1), str(seconds)], *lines[1:]]
        if rest:
            path.write_text("".join(" ".join(line) + "\n" for line in rest))
        else:
            path.unlink(missing_ok=True)
        return ("" if words[0] == "normal" else words[0]), seconds

    def peek_mode(self) -> str:
        with contextlib.suppress(OSError):
            words = (self.state / "mode").read_text().split()
            return words[0] if words else ""
        return ""

    # ---------------------------------------------------------------- events

    def on_flash(self) -> None:
        """Flashing began; the old firmware may still be printing."""
        if self.peek_mode() == "stale" and self.previous:
            for line in self.previous.split(b"\n"):
                self.pty.write(line + b"\n")
                time.sleep(0.02)

    def on_reset(self) -> None:
        self.mode, seconds = self.take_mode()
        self.transcript = bytearray()
        self.pty.write(b"\r\nvirtual-board boot ROM v1.0 (et-hil test double)\r\n")
        if self.mode == "noise":
            self.pty.write(NOISE * 3 + b"\r\n")
        program = self.load_program()
        if program is not None:
            self.run(program, seconds)
        self.previous = bytes(self.transcript)

    def load_program(self) -> bytes | None:
        flash = self.state / "flash"
        if self.args.firmware_address is not None:
            image = _read(flash / f"0x{self.args.firmware_address:08x}.bin")
            if image is None or not image.startswith(EMBEDDED_MAGIC):
                self.log("F", "main", "Model data is not initialized", 1437)
                return None
            return image[len(EMBEDDED_MAGIC) :]
        data = _read(flash / f"0x{self.args.pte_address:08x}.bin")
        return data if data is not None else b"\xff" * 64  # erased flash reads 0xFF

    # ---------------------------------------------------------------- the run

    def run(self, data: bytes, seconds: float) -> None:
        import torch
        from executorch.extension.pybindings import _C

        address = self.args.pte_address if self.args.firmware_address is None else 0x10020000
        magic = data[4:8].decode(errors="replace")
        self.log("I", "main", f"PTE @ 0x{address:x} [----{magic}]", 1523)
        bundled = magic == "BP08"
        size = 268435456 if self.args.firmware_address is None else len(data)
        self.log("I", "runner_init", f"PTE Model data loaded. Size: {size} bytes.", 688)
        if (bundled and not self.args.bundle_io) or magic not in ("ET12", "BP08"):
            # ET_CHECK_MSG(program_result.ok(), "Program loading failed @ %p: 0x%" PRIx32, ...)
            self.log(
                "F",
                "runner_init",
                f"In function runner_init(), assert failed (program_result.ok()): Program loading failed @ 0x{address:x}: 0x23",
                693,
            )
            self.hard_fault()  # the abort path: et_pal_abort() traps
            return
        expected: list[Any] = []
        try:
            program = data
            if bundled:
                program, bundle_inputs, expected = _bundle_contents(data)
            # the module reads the program's bytes in place: `program` must outlive it
            # (both are locals of this function)
            module = _C._load_for_executorch_from_buffer(program, enable_etdump=True)
        except RuntimeError as exc:
            print(f"virtual board: load failed: {exc}", file=sys.stderr, flush=True)
            self.log("I", "runner_init", "Loading of method forward failed with status 0x12", 870)
            self.log(
                "F",
                "runner_init",
                "In function runner_init(), assert failed (status == Error::Ok): Loading of method forward failed",
                874,
            )
            self.hard_fault()
            return
        meta = module.method_meta("forward")
        self.log("I", "runner_init", "Model buffer loaded, has 1 methods", 699)
        self.log("I", "runner_init", "Running method forward", 703)
        self.log("I", "runner_init", "Setup Method allocator pool. Size: 62914560 bytes.", 712)
        self.log("I", "runner_init", "Setting up ETDump", 812)
        self.log("I", "runner_init", "Method 'forward' loaded.", 878)
        self.log("I", "runner_init", "Preparing inputs...", 880)
        if bundled:
            self.log("I", "runner_init", "Input testset[0] from bundled bpte", 885)
            inputs = bundle_inputs
        else:
            inputs = []
            for k in range(meta.num_inputs()):
                info = meta.input_tensor_meta(k)
                dtype = _TORCH_DTYPES[int(info.dtype())]
                inputs.append(torch.ones(list(info.sizes()), dtype=dtype))
        self.log("I", "runner_init", "Input prepared.", 898)
        self.log("I", "run_model", "Starting running 1 inferences...", 1328)
        if self.mode in ("disconnect", "vanish"):
            time.sleep(0.2)
            self.pty.disconnect()
            time.sleep(seconds or 1.0)
            self.pty.connect()
            return
        if self.mode == "hang":
            return  # stuck until the next reset
        if self.mode in ("crash", "hardfault"):
            if self.mode == "crash":
                self.log(
                    "F",
                    "run_model",
                    "In function run_model(), assert failed (status == Error::Ok): Execution of method forward failed with status 0x12",
                    1346,
                )
            self.printf(
                "Hard fault. irq=-13, pc=0x10001a2c, lr=0x10003f01, xpsr=0x61000000, sp=0x3007ffa0"
            )
            self.printf("            cfsr=0x00008200 bfar=0xdeadbeef mmfar=0x00000000")
            self.printf("Application exit code: 1.")
            self.raw(b"\x04")
            return
        started = time.perf_counter()
        time.sleep(self.args.run_delay)  # a slower board, so tests can see turns
        outputs = module.run_method("forward", tuple(inputs))
        cycles = int((time.perf_counter() - started) * self.args.cpu_hz)
        if self.args.pmu:
            self.pmu_report(cycles)
        self.log("I", "run_model", "1 inferences finished", 1351)
        self.print_outputs(outputs)
        bundle_ok: bool | None = True
        if bundled:
            bundle_ok = self.bundle_verdict(outputs, expected)
            if bundle_ok is None:  # ET_CHECK_MSG aborted inside the comparison
                self.hard_fault()
                return
        self.log("I", "run_model", "Model run: 1", 1355)
        self.log("I", "main", "Model run: 1", 1543)
        self.log("I", "log_mem_status", f"model_pte_program_size:     {len(data)} bytes.", 960)
        self.etdump_block(module, outputs)
        if not bundle_ok:
            # ET_CHECK_MSG(model_ok == true, ...) traps: the abort path
            self.log(
                "F",
                "main",
                "In function main(), assert failed (model_ok == true): Problem running model",
                1548,
            )
            self.hard_fault()
            return
        self.log("I", "main", "Program complete, exiting.", 1550)
        self.raw(b"I [executorch:arm_executor_runner.cpp:1554 main()] \x04")

    def hard_fault(self) -> None:
        """core_platform's HardFault handler, then exit(1) and EOT."""
        self.printf(
            "Hard fault. irq=-13, pc=0x10001a2c, lr=0x10003f01, xpsr=0x61000000, sp=0x3007ffa0"
        )
        self.printf("            cfsr=0x00008200 bfar=0xdeadbeef mmfar=0x00000000")
        self.printf("Application exit code: 1.")
        self.raw(b"\x04")

    def pmu_report(self, cycles: int) -> None:
        def perf(message: str) -> None:
            self.log("I", "StopMeasurements", message, 180, "arm_perf_monitor.cpp")

        perf("NPU Inferences : 1")
        perf("NPU delegations: 0 (0.00 per inference)")
        perf("Profiler report, CPU cycles per operator:")
        perf("ethos-u : cycle_cnt : 0 cycles (0.00 per inference)")
        perf("Operator(s) total: 0 CPU cycles (0.00 per inference)")
        perf(f"Inference runtime: {cycles} CPU cycles total ({cycles:.2f} per inference)")
        perf(
            "NOTE: CPU cycle values and ratio calculations require FPGA and identical CPU/NPU frequency"
        )
        perf("Inference CPU ratio: 100.00 %")
        perf("Inference NPU ratio: 0.00 %")
        perf("cpu_wait_for_npu_cntr : 0 CPU cycles (0.00 per inference)")
        perf("Ethos-U PMU report:")
        perf("ethosu_pmu_cycle_cntr :  0 (0.00 per inference)")
        for i in range(4):
            perf(f"ethosu_pmu_cntr{i} : 0 (0.00 per inference)")
        perf(
            "Ethos-U PMU Events:[ETHOSU_PMU_AXI0_RD_DATA_BEAT_RECEIVED, "
            "ETHOSU_PMU_AXI1_RD_DATA_BEAT_RECEIVED, ETHOSU_PMU_AXI0_WR_DATA_BEAT_WRITTEN, "
            "ETHOSU_PMU_NPU_IDLE]"
        )

    def print_outputs(self, outputs: list[Any]) -> None:
        self.log("I", "print_outputs", f"{len(outputs)} outputs: ", 1060)
        for i, tensor in enumerate(outputs):
            kind = UART_DTYPES.get(str(tensor.dtype))
            if kind is None:
                continue  # the runner prints nothing for other dtypes
            # memory order: the runner walks the data pointer
            for j, value in enumerate(_memory_order(tensor).tolist()):
                if kind == "float":
                    text = f"{value:f}"
                elif kind == "bool":
                    text = f"{'true ' if value else 'false'} (0x{int(value):x})"
                else:
                    text = str(int(value))
                self.printf(f"Output[{i}][{j}]: ({kind}) {text}")

    def bundle_verdict(self, outputs: list[Any], expected: list[Any]) -> bool | None:
        """verify_method_outputs: None when it aborts (strides differ), else the verdict."""
        for got_t, want_t in zip(outputs, expected, strict=True):
            if list(got_t.dim_order()) != list(want_t.dim_order()):
                # tensors_are_close cannot compare tensors of different strides: it aborts.
                self.log(
                    "F",
                    "tensors_are_close",
                    "In function tensors_are_close(), assert failed "
                    "(ArrayRef<executorch::aten::StridesType>(strides, bundled_tensor.dim()) "
                    "== method_output_tensor.strides()): The two inputs of `tensors_are_close` "
                    "function shall have same strides",
                    187,
                    "bundled_program.cpp",
                )
                return None
        # Same strides: the two data buffers are compared element by element in memory.
        got = [_memory_order(o).float().numpy() for o in outputs]
        want = [_memory_order(e).float().numpy() for e in expected]
        diff = np.concatenate([np.abs(g - w) for g, w in zip(got, want, strict=True)])
        rel = diff / np.maximum(np.abs(np.concatenate(want)), 1e-12)
        self.printf("=== Error stats for testset 0 ===")
        self.printf(f" mean_absolute_error: {diff.mean():f}")
        self.printf(f" max_absolute_error:  {diff.max():f}")
        self.printf(f" mean_relative_error: {rel.mean():f}")
        self.printf(f" max_relative_error:  {rel.max():f}")
        ok = all(np.allclose(g, w, rtol=RTOL, atol=ATOL) for g, w in zip(got, want, strict=True))
        if self.mode == "bundle_fail":
            ok = False  # a firmware built with a tighter ET_ATOL than the harness's tolerance
        if ok:
            self.log(
                "I", "verify_result", "Model output match expected BundleIO bpte ref data.", 1300
            )
            self.log("I", "verify_result", "TEST: BundleIO index[0] Test_result: PASS", 1301)
        else:
            self.log(
                "E",
                "verify_result",
                f"Model output don't match expected BundleIO bpte ref data. rtol={RTOL:f} atol={ATOL:f}",
                1310,
            )
            self.log("E", "verify_result", "TEST: BundleIO index[0] Test_result: FAIL", 1311)
            self.log("E", "verify_result", "Bundle verification failed with status 0x12", 1320)
        return ok

    def etdump_block(self, module: Any, outputs: list[Any]) -> None:
        path = self.state / "etdump.tmp"
        module.write_etdump_result_to_file(str(path), "")
        etdump = path.read_bytes()
        debug = b""
        if self.args.dump_outputs:
            etdump, debug = with_output_events(etdump, outputs)
        text = base64.b64encode(etdump).decode()
        if self.mode == "drop":
            # a UART overrun: a run of bytes in the middle of the block is lost
            middle = len(text) // 2
            text = text[:middle] + text[middle + 7 :]
        self.log("I", "dump_etdump", f"[base64] buffer size: {len(text)}", 1180)
        self.printf("#[RUN THIS]")
        if debug:
            self.printf("# Writing debug_buffer.bin [base64]")
            self.printf(f'echo "{base64.b64encode(debug).decode()}" | base64 -d >debug_buffer.bin')
        self.printf("# Writing etdump.bin [base64]")
        self.printf(f'echo "{text}" | base64 -d >etdump.bin')
        self.printf("# Generate cpu cycle table with:")
        self.printf(
            "python3 -m devtools.inspector.inspector_cli --etdump_path etdump.bin "
            "--source_time_scale cycles --target_time_scale cycles"
        )
        self.printf("#[END]")


_TORCH_DTYPES: dict[int, Any] = {}


def with_output_events(etdump: bytes, outputs: list[Any]) -> tuple[bytes, bytes]:
    """The ETDump as ``-DET_DUMP_OUTPUTS=ON`` firmware writes it: one debug event
    per program output (``output`` set), its bytes 64-byte aligned in the debug
    buffer. The profiling events are the real run's."""
    import struct

    from executorch.devtools.etdump import schema_flatcc as schema
    from executorch.devtools.etdump.serialize import (
        deserialize_from_etdump_flatcc,
        serialize_to_etdump_flatcc,
    )
    from executorch.exir.scalar_type import ScalarType

    dump = deserialize_from_etdump_flatcc(etdump)
    buffer = bytearray()
    events = dump.run_data[-1].events or []  # the execution run, after Method::init
    for tensor in outputs:
        buffer += b"\0" * (-len(buffer) % 64)
        offset = len(buffer)
        buffer += _memory_order(tensor).numpy().tobytes()  # the tensor's own bytes
        code = next(k for k, v in _TORCH_DTYPES.items() if v == tensor.dtype)
        entry = schema.Value(
            val=schema.ValueType.TENSOR.value,
            tensor=schema.Tensor(
                scalar_type=ScalarType(code),
                sizes=list(tensor.shape),
                strides=list(tensor.stride()),
                offset=offset,
            ),
            tensor_list=None,
            int_value=None,
            float_value=None,
            double_value=None,
            bool_value=None,
            output=schema.Bool(True),
        )
        events.append(
            schema.Event(
                profile_event=None,
                allocation_event=None,
                debug_event=schema.DebugEvent(
                    name="",
                    chain_index=0,
                    instruction_id=-1,
                    delegate_debug_id_int=-1,
                    delegate_debug_id_str="",
                    debug_entry=entry,
                ),
            )
        )
    dump.run_data[-1].events = events
    data = serialize_to_etdump_flatcc(dump)
    return struct.pack("<I", len(data)) + data, bytes(buffer)  # flatcc: size-prefixed


def _bundle_contents(data: bytes) -> tuple[bytes, list[Any], list[Any]]:
    """A .bpte's program, test-set-0 inputs and expected outputs (tensors in the
    bundle's dim order)."""
    import torch
    from executorch.devtools.bundled_program.serialize import (
        deserialize_from_flatbuffer_to_bundled_program,
    )

    bundle = deserialize_from_flatbuffer_to_bundled_program(data)
    case = bundle.method_test_suites[0].test_cases[0]

    def tensor(value: Any) -> Any:
        # The bundle holds each tensor's bytes in its dim order, as the runtime
        # copies them; this is the logical tensor over those bytes.
        t = value.val
        dtype = _TORCH_DTYPES[int(t.scalar_type)]
        sizes = [int(s) for s in t.sizes]
        order = [int(d) for d in t.dim_order] or list(range(len(sizes)))
        memory = torch.frombuffer(bytearray(t.data), dtype=dtype).reshape([sizes[d] for d in order])
        return memory.permute([order.index(d) for d in range(len(order))])

    inputs = [tensor(v) for v in case.inputs]
    expected = [tensor(v) for v in case.expected_outputs]
    return bytes(bundle.program), inputs, expected


def _memory_order(tensor: Any) -> Any:
    """A runtime tensor's elements as they lie in memory (its dim order), flat."""
    return tensor.permute(tensor.dim_order()).contiguous().reshape(-1)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def load_runtime() -> None:
    """Import the ExecuTorch runtime once (the cost a real board never pays): the
    host board's loader (quantized kernels registered), then the devtools the
    first bundle and ETDump need."""
    from executorch.devtools.bundled_program import serialize  # noqa: F401
    from executorch.devtools.etdump import serialize as etdump_serialize  # noqa: F401
    from executorch.exir.scalar_type import ScalarType

    from et_hil import dtypes
    from et_hil.boards.host.worker import load_runtime as load_executorch_runtime

    load_executorch_runtime()
    for member in ScalarType:
        known = dtypes.from_scalar_type(member.value)
        if known is not None:
            _TORCH_DTYPES[member.value] = dtypes.torch_dtype(known.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", required=True, help="folder: flash/, mode, board.pid")
    parser.add_argument("--link", required=True, help="symlink to create for the pty")
    parser.add_argument("--pte-address", type=lambda s: int(s, 0), default=0x70000000)
    parser.add_argument("--firmware-address", type=lambda s: int(s, 0), default=None)
    parser.add_argument("--bundle-io", action="store_true")
    parser.add_argument("--pmu", action="store_true", help="Ethos-U build: print the PMU report")
    parser.add_argument("--cpu-hz", type=float, default=400e6)
    parser.add_argument("--run-delay", type=float, default=0.0, help="seconds per inference")
    parser.add_argument(
        "--dump-outputs", action="store_true", help="firmware built with -DET_DUMP_OUTPUTS=ON"
    )
    args = parser.parse_args()

    state = Path(args.state)
    (state / "flash").mkdir(parents=True, exist_ok=True)
    events: queue.Queue[str] = queue.Queue()
    signal.signal(signal.SIGUSR1, lambda *_: events.put("reset"))
    signal.signal(signal.SIGUSR2, lambda *_: events.put("flash"))
    signal.signal(signal.SIGTERM, lambda *_: events.put("stop"))
    load_runtime()
    pty = Pty(Path(args.link))
    firmware = Firmware(args, pty)
    (state / "board.pid").write_text(str(os.getpid()))
    print(f"virtual board ready on {args.link}", flush=True)
    while True:
        try:
            event = events.get(timeout=0.5)
        except queue.Empty:
            pty.write(b"", 0)  # keep the line drained
            continue
        if event == "stop":
            pty.disconnect()
            return 0
        if event == "flash":
            firmware.on_flash()
        elif event == "reset":
            try:
                firmware.on_reset()
            except Exception as exc:  # a bug of the double must not look like a lost port
                firmware.log("F", "main", f"virtual board internal error: {exc!r}", 0)
                import traceback

                traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
