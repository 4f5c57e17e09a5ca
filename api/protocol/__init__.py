"""Request and response schemas, one module per capability (as vLLM keeps a ``protocol.py``
beside each entrypoint), plus ``common`` (what several share), ``models`` (model cards) and
``jobs`` (the job view)."""
