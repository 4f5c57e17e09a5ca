"""The ``speechfleet`` command: run the whole service on one machine, or its pieces."""
