"""What the upstream ExecuTorch Arm runner speaks: its log lines and failure lines,
ETDump framing, BundleIO bundles and the checks on its ELF. Shared by every board
that runs that firmware (FVPs, serial boards)."""
