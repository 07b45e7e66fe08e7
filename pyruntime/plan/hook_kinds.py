"""The hook kinds of config.md, in lifecycle order."""

from __future__ import annotations

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")
