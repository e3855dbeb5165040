"""Allow `python -m pyhost`."""

from pyhost.cli import main

main()
