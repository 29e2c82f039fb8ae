"""Stage 4, verdict -> report: the results record, JSON Lines files and repro folders."""
