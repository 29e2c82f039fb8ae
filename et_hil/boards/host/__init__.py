"""The ``host`` board kind: its declaration (:mod:`.kind`), its board (:mod:`.board`)
and the worker process that runs programs (:mod:`.worker`)."""
