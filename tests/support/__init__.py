"""What the tests share, one home per concept; fixtures stay in conftest.py and call in here.

- ``isolation``: the environment every test runs in (its own home, a pinned git identity)
- ``repos``: real git repositories (make one, ask git what is there)
- ``cli``: running orch in-process and as the installed entry point, reading its one error
  line and its JSON envelope
- ``attempts``: dispatching, listing, showing, working and cancelling attempts through the
  CLI, and the checks that nothing was left behind or that everything is consistent
- ``archives``: restoring what cleanup saved, with plain git and tar
- ``trouble``: a repository in every kind of trouble doctor knows
- ``store``: stores on SQLite and PostgreSQL, clocks, attempts made straight through the store
- ``processes``: real processes that are never left running, waiting with deadlines, and
  a stand-in put in place of a program on PATH
- ``dashboard``: requests to the dashboard of ``orch serve``
- ``records``: domain records built in memory, for the unit tests

Nothing here fakes orch or mocks git; nothing here is a test.
"""
