"""Running Ansible: playbooks through ansible-runner, their results, the progress shown while they run, and
pyhost's own Ansible module (pyhost_files).

Imports only the workspace (and errors, content).
"""
