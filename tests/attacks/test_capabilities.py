"""CVE-2022-29162 class: inheritable capabilities are empty unless the config asks,
in create and in exec (``exec --cap`` never adds to the inheritable set); ambient
only when asked.  The caller itself holds inheritable and ambient CAP_NET_ADMIN
(setpriv), so a runtime that passed its own sets through would be caught.

Defence in pyruntime: credentials.set_capabilities capsets exactly the planned
effective/permitted/inheritable sets and clears the ambient set before raising
only what is asked; exec's --cap adds to bounding/effective/permitted/ambient only.
"""

from __future__ import annotations

import pytest

from integration.helpers import PYRUNTIME, BundleFactory, Runtime, cap_mask, parse_status

from .conftest import force_delete, run_shell

pytestmark = pytest.mark.root

CALLER = ["setpriv", "--inh-caps", "+net_admin,+sys_admin", "--ambient-caps", "+net_admin", "--"]
STATUS = "grep ^Cap /proc/self/status"


def caps(text: str) -> dict[str, int]:
    return {key: int(value, 16) for key, value in parse_status(text).items()
            if key.startswith("Cap")}


def as_caller(rt: Runtime, *argv: str, detached: bool = False):
    return run_shell(rt, 'exec "$@"', *CALLER, PYRUNTIME, "--root", str(rt.root), *argv,
                     detached=detached)


def test_caller_really_has_inheritable_and_ambient(rt: Runtime) -> None:
    result = run_shell(rt, 'exec "$@"', *CALLER, "grep", "^Cap", "/proc/self/status")
    found = caps(result.stdout)
    assert found["CapInh"] & cap_mask(["CAP_NET_ADMIN"]) and found["CapAmb"]


@pytest.mark.parametrize("capabilities", [
    {"bounding": ["CAP_NET_ADMIN", "CAP_KILL"], "effective": ["CAP_NET_ADMIN", "CAP_KILL"],
     "permitted": ["CAP_NET_ADMIN", "CAP_KILL"]},
    {},
    {"bounding": ["CAP_NET_ADMIN"], "effective": ["CAP_NET_ADMIN"], "permitted": ["CAP_NET_ADMIN"],
     "ambient": ["CAP_NET_ADMIN"]},  # ambient without inheritable cannot be raised
], ids=["no-inheritable", "empty", "ambient-without-inheritable"])
def test_create_inheritable_empty_unless_asked(rt: Runtime, bundles: BundleFactory, cid: str,
                                               capabilities: dict) -> None:
    bundle = bundles.make(["sh", "-c", STATUS], process={"capabilities": capabilities})
    result = as_caller(rt, "run", "--bundle", str(bundle), cid)
    force_delete(rt, cid)
    assert result.returncode == 0, result
    found = caps(result.stdout)
    assert found["CapInh"] == 0, found
    assert found["CapAmb"] == 0, found


def test_create_ambient_only_when_asked(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    asked = ["CAP_NET_ADMIN"]
    bundle = bundles.make(["sh", "-c", STATUS], process={"capabilities": {
        kind: asked for kind in ("bounding", "effective", "permitted", "inheritable", "ambient")}})
    result = as_caller(rt, "run", "--bundle", str(bundle), cid)
    force_delete(rt, cid)
    assert result.returncode == 0, result
    found = caps(result.stdout)
    assert found["CapInh"] == cap_mask(asked) and found["CapAmb"] == cap_mask(asked), found


def test_exec_cap_does_not_add_inheritable(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    as_caller(rt, "run", "--detach", "--bundle", str(bundles.make(["sleep", "60"])), cid,
              detached=True)
    try:
        assert rt.status(cid) == "running"
        for argv in (("exec", cid, "sh", "-c", STATUS),
                     ("exec", "--cap", "CAP_NET_ADMIN", "--cap", "CAP_SYS_ADMIN", cid, "sh", "-c",
                      STATUS)):
            result = as_caller(rt, *argv)
            assert result.returncode == 0, result
            found = caps(result.stdout)
            assert found["CapInh"] == 0, (argv, found)
            assert found["CapAmb"] == 0, (argv, found)
        assert found["CapEff"] & cap_mask(["CAP_NET_ADMIN"])  # --cap did apply
    finally:
        force_delete(rt, cid)
