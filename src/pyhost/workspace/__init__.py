"""The workspace: one inventory directory (hosts, their settings, the users file), read and written here.

The lowest part: it imports nothing from pyhost but errors and content.
"""
