"""Developer tools over the real CLI: `make demo` and the seed's tutorial, run against a sandbox.

Nothing else in pyhost imports them.
"""
