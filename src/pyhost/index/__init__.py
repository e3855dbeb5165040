"""The package index: its pages (PEP 503/691), what it accepts, the pages for people, the targets the static
route publishes to, and the client configuration that points installers at it.

indexgen, distcheck and browse also run on the server as single files: they import nothing from pyhost.
The rest may import the workspace and ansible.
"""
