"""Stage 1, model -> artifact: export, quantize, partition, lower, compile with Vela,
and cache the ``.pte`` with its ETRecord and metadata by content."""
