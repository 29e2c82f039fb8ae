"""The semihosting runner's command line: what ``arm_executor_runner`` reads from argv.

Light on purpose (no numpy): FVP platform rendering and the CLI use it.

Programs without inputs: the runner refuses a command line of fewer than 7
arguments (``Not right number of parameters!``), and its semihosting input check
wants one ``-i`` file per program input, at least one. Only its BundleIO path
skips that check, so such a program goes to the runner as a bundle
(``program.bpte``) with an empty input set, and the command line is padded with
a second ``-o out``, which the runner reads as the same option given twice. The
runner must be built with BundleIO (upstream's ``--bundleio``; et-hil's firmware
recipe always is).
"""

from __future__ import annotations

RUNNER_ARGV0 = "executor_runner"  # argv[0] of the semihosting command line; ignored by the runner
PROGRAM = "program.pte"
BUNDLE = "program.bpte"
OUTPUT_BASENAME = "out"

# Why the boards that run this runner by semihosting (the BoardKind.fixed_shapes of
# their kinds) run a dynamic-shape program only at the size it was planned for: the
# runner reads each ``-i`` file into the input the program declares, and refuses a
# file whose size is not that input's planned nbytes ("input size ... and tensor
# size ... mismatch!"); it never resizes an input.
FIXED_SHAPES = "the semihosting runner reads each input at the program's planned (largest) size"


def runner_argv(input_count: int) -> list[str]:
    """The runner's argv for a program with ``input_count`` inputs, as upstream
    writes it (basenames only, to stay short); see the module docstring for the
    no-input form."""
    if input_count == 0:
        return [RUNNER_ARGV0, "-m", BUNDLE, "-o", OUTPUT_BASENAME, "-o", OUTPUT_BASENAME]
    argv = [RUNNER_ARGV0, "-m", PROGRAM, "-o", OUTPUT_BASENAME]
    for i in range(input_count):
        argv += ["-i", f"i{i}.bin"]
    return argv
