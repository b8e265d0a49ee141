"""This machine, outside git and the store: processes, ports, and the files orch keeps
under its home (the inbox payloads, the archive of saved work)."""
