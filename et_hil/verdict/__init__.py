"""Stage 3, result -> verdict: references from eager PyTorch, tolerances, the
memory-fit preflight, the check pipeline and the per-layer divergence table."""
