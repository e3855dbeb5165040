"""pyhost-mirror on the server: push the index to its S3 read mirror (pyhost.index.mirror, in the directory
beside this file). pyhost-mirror.service runs it with the app's Python in isolated mode (-I): nothing from the
environment reaches the import path, and, since Python 3.11, neither does this file's directory (-I implies
-P), so the one root-owned directory it needs is put first here."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Imported after the path it is found on is put first.
from pyhost.index.mirror import main

sys.exit(main())
