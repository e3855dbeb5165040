#!/usr/bin/python
"""The `pyhost_files` Ansible module: many files, directories and links brought to their state in one run.

Ansible finds it as plugins/modules/pyhost_files.py (a link to this file; the wheel carries a copy)
through ANSIBLE_LIBRARY, which pyhost's runner, molecule/*/molecule.yml and the checkout's ansible.cfg set.
A `copy` or `template` task costs two module runs (a stat, then the file module) even when nothing changes,
and each loop item costs one more; a module run is about 0.3 s (the target's Python imports Ansible's
module_utils each time). One run for all the files of a step keeps a re-provision fast while still checking
content, owner, group and mode of each of them.

Per entry, with the same meaning as in Ansible's file/copy modules:
- state `file`: `content` (rendered on the controller, e.g. with the template lookup), `owner`, `group`,
  `mode`, optional `validate` (a command with `%s`, run on the new content before it goes live). A new
  content is written to a temporary file in the same directory, given its owner and mode, validated, then
  renamed over the old file: readers see the old or the new file, never a partial or too open one.
  Without `content`, the file must exist and only its owner, group and mode are set.
- state `directory`: created with missing parents (each created one gets the entry's owner, group, mode).
- state `link`: a symlink to `src`; a file in its place is replaced. `src` must exist unless `force`
  (in check mode it may be missing: an earlier step would have made it).
- state `absent`: removed, whatever it is.
Entries are handled in order, so a directory listed first can hold the files listed after it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: pyhost_files
short_description: Files, directories and links brought to their state in one module run
description:
  - Each entry is a file with content, a directory, a symlink or an absent path, with owner, group and mode.
  - Content changes are validated on a temporary file, then renamed into place.
options:
  entries:
    description: The paths to manage, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: The path on the host.
        type: path
        required: true
      state:
        description: What the path must be.
        type: str
        choices: [file, directory, link, absent]
        default: file
      content:
        description: The file's content (state file); without it the file must exist and keeps its content.
        type: str
      src:
        description: The link's target (state link).
        type: path
      force:
        description: Create the link even when src does not exist.
        type: bool
        default: false
      owner:
        description: Owner of the file or directory.
        type: str
      group:
        description: Group of the file or directory.
        type: str
      mode:
        description: Mode of the file or directory, as a string such as "0644".
        type: raw
      validate:
        description: Command run on the new content before it goes live; %s is the temporary file's path.
        type: str
"""

RETURN = r"""
changed_paths:
  description: The paths whose content, state, owner, group or mode changed (or would change in check mode).
  type: list
  elements: str
  returned: always
"""

ENTRY_SPEC = {
    "path": {"type": "path", "required": True},
    "state": {"type": "str", "choices": ["file", "directory", "link", "absent"], "default": "file"},
    "content": {"type": "str"},
    "src": {"type": "path"},
    "force": {"type": "bool", "default": False},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "raw"},
    "validate": {"type": "str"},
}


class Files:
    """Brings each entry to its state; records what changed and, in diff mode, content before and after."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.changed_paths: list[str] = []
        self.diffs: list[dict[str, str]] = []

    def fail(self, entry: dict, message: str) -> None:
        self.module.fail_json(msg=f"{entry['path']}: {message}", changed_paths=self.changed_paths)

    def attributes_differ(self, entry: dict, path: str | None = None) -> bool:
        """Set owner, group and mode where they differ (only report them in check mode)."""
        file_args = self.module.load_file_common_arguments(
            {key: entry[key] for key in ("owner", "group", "mode")}, path=path or entry["path"]
        )
        return self.module.set_fs_attributes_if_different(file_args, False)

    def ensure(self, entry: dict) -> None:
        changed = getattr(self, f"ensure_{entry['state']}")(entry)
        if changed:
            self.changed_paths.append(entry["path"])

    def ensure_file(self, entry: dict) -> bool:
        path = entry["path"]
        if os.path.isdir(path) and not os.path.islink(path):
            self.fail(entry, "is a directory, not a file")
        if entry["content"] is None:
            if not os.path.isfile(path):
                self.fail(entry, "does not exist, and no content was given to write")
            return self.attributes_differ(entry)
        new = entry["content"].encode("utf-8")
        old = None
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as handle:
                old = handle.read()
        if old == new:
            return self.attributes_differ(entry)
        if self.module._diff:
            before = old.decode("utf-8", "replace") if old is not None else ""
            self.diffs.append(
                {"before_header": path, "after_header": path, "before": before, "after": entry["content"]}
            )
        if not self.module.check_mode:
            self.replace(entry, new, keep_mode_of=path if old is not None else None)
        return True

    def replace(self, entry: dict, content: bytes, keep_mode_of: str | None) -> None:
        """Write a temporary file beside the target, give it its owner and mode, validate it, rename it."""
        path = entry["path"]
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            self.fail(entry, f"its directory {directory} does not exist")
        # The temporary name ends with the file's name, so validators that look at its suffix (.service)
        # see the right kind of file; it starts with a dot, so that nothing reading *.conf picks it up.
        descriptor, temporary = tempfile.mkstemp(
            prefix=".pyhost-", suffix=f"-{os.path.basename(path)}", dir=directory
        )
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
            if entry["mode"] is None and keep_mode_of:
                shutil.copymode(keep_mode_of, temporary)
            elif entry["mode"] is None:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(temporary, 0o666 & ~umask)
            self.attributes_differ(entry, temporary)
            if entry["validate"]:
                self.validate(entry, temporary)
            os.replace(temporary, path)
        finally:
            if os.path.lexists(temporary):
                os.unlink(temporary)

    def validate(self, entry: dict, temporary: str) -> None:
        command = entry["validate"]
        if "%s" not in command:
            self.fail(entry, f"validate must contain %s: {command}")
        rc, out, err = self.module.run_command(command.replace("%s", shlex.quote(temporary)))
        if rc != 0:
            detail = " ".join((err or out).split()) or f"exit code {rc}"
            self.fail(entry, f"the new content failed to validate ({command}): {detail}")

    def ensure_directory(self, entry: dict) -> bool:
        path = entry["path"]
        if os.path.lexists(path) and not os.path.isdir(path):
            self.fail(entry, "exists and is not a directory")
        if os.path.isdir(path):
            return self.attributes_differ(entry)
        if self.module.check_mode:
            return True
        missing = []
        current = path
        while not os.path.isdir(current):
            missing.append(current)
            current = os.path.dirname(current)
        for directory in reversed(missing):
            os.mkdir(directory)
            self.attributes_differ(entry, directory)
        return True

    def ensure_link(self, entry: dict) -> bool:
        path, src = entry["path"], entry["src"]
        if os.path.islink(path) and os.readlink(path) == src:
            return False
        if os.path.isdir(path) and not os.path.islink(path):
            self.fail(entry, "is a directory, not a link")
        target = src if os.path.isabs(src) else os.path.join(os.path.dirname(path), src)
        # In check mode the target may be one that an earlier step would have made.
        if self.module.check_mode:
            return True
        if not entry["force"] and not os.path.exists(target):
            self.fail(entry, f"the link's target {src} does not exist")
        temporary = os.path.join(
            os.path.dirname(path), f".pyhost-link-{os.getpid()}-{os.path.basename(path)}"
        )
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(src, temporary)
        os.replace(temporary, path)
        return True

    def ensure_absent(self, entry: dict) -> bool:
        path = entry["path"]
        if not os.path.lexists(path):
            return False
        if self.module.check_mode:
            return True
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "entries": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": ENTRY_SPEC,
                "required_if": [("state", "link", ["src"])],
            }
        },
        supports_check_mode=True,
    )
    files = Files(module)
    for entry in module.params["entries"]:
        files.ensure(entry)
    result: dict = {"changed": bool(files.changed_paths), "changed_paths": files.changed_paths}
    if files.diffs:
        result["diff"] = files.diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
