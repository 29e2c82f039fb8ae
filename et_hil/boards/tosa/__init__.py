"""The ``tosa`` board kind: its declaration (:mod:`.kind`), its board (:mod:`.board`),
the worker process (:mod:`.worker`) and the ``.pte`` interpreter it runs programs
with (:mod:`.pte_interpreter`)."""
