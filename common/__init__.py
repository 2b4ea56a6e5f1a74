"""The project's shared basics: small helpers every package may use (atomic file writes, a
run-directory lock). This package imports nothing of ``kg``, ``retrieval``, ``model`` or
``api``, so any of them can depend on it without an import cycle."""
