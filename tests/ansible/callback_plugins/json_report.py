"""An aggregate callback: the json callback's report of a run (ansible.posix.json), one line per
ansible-playbook run appended to a file, while the screen keeps the stdout callback (Molecule's
idempotence step reads the default callback's recap). tests/ansible enables it for `molecule test`."""

from __future__ import annotations

import os

from ansible_collections.ansible.posix.plugins.callback.json import CallbackModule as JsonCallback

DOCUMENTATION = """
name: json_report
type: aggregate
short_description: ansible.posix.json's report of each run, appended to a file
description:
  - The plays, their tasks with every host's result, and the recap, as ansible.posix.json builds
    them, written as one line to the file CATALOG_ANSIBLE_JSON_REPORT names (nothing when unset).
requirements: [enabled in callbacks_enabled]
options:
  json_indent:
    description: One line per run.
    type: integer
    default: 0
  show_custom_stats:
    description: No custom stats.
    type: bool
    default: false
"""


class _AppendLine:
    """Stands in for the Display the json callback prints its report on."""

    def __init__(self, path: str) -> None:
        self.path = path

    def display(self, text: str, *args: object, **kwargs: object) -> None:
        with open(self.path, "a", encoding="utf-8") as report:
            report.write(text + "\n")


class CallbackModule(JsonCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "json_report"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("CATALOG_ANSIBLE_JSON_REPORT")
        if not path:
            return
        screen, self._display = self._display, _AppendLine(path)
        try:
            super().v2_playbook_on_stats(stats)
        finally:
            self._display = screen
