import pytest
pytestmark = pytest.mark.root
@pytest.mark.parametrize("n", range(150))
def test_race(rt, bundles, cid, n):
    b = bundles.make(["true"], hooks={"prestart": [{"path": "/bin/true"}]}, mounts=[], hostname=None,
                     linux={"maskedPaths": [], "readonlyPaths": [], "namespaces": [{"type": "mount"}, {"type": "pid"}]})
    r = rt.create(cid, b)
    if r.returncode == 0:
        rt.delete(cid, force=True).ok()
    assert r.returncode == 0, r
