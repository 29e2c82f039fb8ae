#!/bin/sh
# Named like an FVP (symlinks); runs the double with the Python that has ExecuTorch.
exec "${ET_HIL_DOUBLE_PYTHON:-python3}" "$(dirname "$(readlink -f "$0")")/fvp_double.py" --as "$(basename "$0")" "$@"
