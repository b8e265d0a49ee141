"""Events out of orch: the event document, delivering the outbox to the configured sinks,
starting a deliverer after a change, and what failed.

Every change already wrote its event in its own transaction (``orch.store``); this
package only reads them and hands each to the sinks that subscribe to it: once per sink,
in order per attempt, retried with growing pauses, and failed for good only visibly
(``orch events --failed``, ``orch doctor``).
"""
