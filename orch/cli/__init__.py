"""The command line: the only place that imports click and maps errors to exit codes."""
