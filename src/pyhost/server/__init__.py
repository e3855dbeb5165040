"""Looking after a provisioned server: its health, backups, fail2ban's bans and download statistics.

Each job runs a playbook through ansible/ and reads the answer; stats also runs on the server as one file.
May import the workspace, ansible and index.
"""
