"""Allow `python -m pyhost`."""

from pyhost.cli.main import main

main()
