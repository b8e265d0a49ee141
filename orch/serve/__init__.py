"""``orch serve``: the heartbeat loop that keeps the store honest and dispatches queued
tasks, and the local dashboard over the store.

Sits between the CLI and the use cases: it calls the same functions the CLI calls
(cancel, retry, send, list, show) and never touches SQL or click itself.
"""
