"""pyhost-mirror on the server: push the index to its S3 read mirror (pyhost.index.mirror, in the directory
beside this file). pyhost-mirror.service runs it with the app's Python in isolated mode (-I), which puts this
file's directory, and nothing from the environment, on the import path."""

import sys

from pyhost.index.mirror import main

sys.exit(main())
