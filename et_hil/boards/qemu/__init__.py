"""QEMU boards: the genuine upstream runner on QEMU's Cortex-M machines."""
