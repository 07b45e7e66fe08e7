"""VM tests: real cgroup v2 in a QEMU guest booted by harness.py (see README.md)."""
