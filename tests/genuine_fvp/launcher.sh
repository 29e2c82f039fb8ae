#!/bin/sh
# Named like an FVP (symlinks): answers its command line with the genuine runner on QEMU.
exec "${ET_HIL_DOUBLE_PYTHON:-python3}" "$(dirname "$(readlink -f "$0")")/fvp_on_qemu.py" --as "$(basename "$0")" "$@"
