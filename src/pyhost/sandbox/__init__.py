"""The sandbox and the test machinery: a local "VPS in a box" in docker, its images and offline mirrors.

Product code never imports it, except the cli's `sandbox` commands and docker connection preflight. It
registers its host in the workspace with ordinary host variables, which the product reads like any host's.
May import the workspace and ansible.
"""
