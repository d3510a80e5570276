"""Things to do after a job reaches a final status (batch bookkeeping registers here), run after commit.

A hook that fails is logged and left to the sweeper, which repeats every periodic check from the rows.
"""

from __future__ import annotations

from collections.abc import Callable

JobEndHook = Callable[[str, str | None], None]  # (job_id, batch_id)

_hooks: list[JobEndHook] = []


def on_job_end(hook: JobEndHook) -> JobEndHook:
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def job_end_hooks() -> list[JobEndHook]:
    return list(_hooks)
