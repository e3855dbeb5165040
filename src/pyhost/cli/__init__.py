"""The `pyhost` command line: one module per group of commands, over the parts below it.

main holds the `pyhost` group and the everyday commands; options the shared options and preflights. Only
the cli imports the sandbox: the `sandbox` command group and the docker connection preflight.
"""
