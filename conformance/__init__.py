"""Runtime-agnostic conformance suite for OCI runtimes (runtime-spec v1.3.0).

The suite only ever calls a runtime binary with runc's command line
(``--root DIR create|start|state|kill|delete``); it imports no runtime code.
See ``conformance/README.md``.
"""
