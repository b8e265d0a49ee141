"""JSON Schemas shipped with orch (data files; this package has no code)."""
