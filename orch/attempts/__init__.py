"""The attempt use cases: dispatch, the lifecycle, retry, the worker runtime, cleanup and
doctor. They orchestrate the adapters (store, git, system) and the workspace sources; they
run no SQL, no subprocess and write no JSON of their own."""
