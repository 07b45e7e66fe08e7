"""``process``: who the container's process is and what it inherits.

Each test runs a probe inside a container and compares what the kernel
reports (/proc/self/status, /proc/self/limits, ``id``...) with the config:
a field pyruntime ignored would show the host's (root's) values instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import (BundleFactory, Runtime, assert_one_line_error, cap_mask, parse_limits,
                      parse_status, probe_script, sections)

pytestmark = pytest.mark.root


def test_uid_gid_additional_gids_and_umask(rt: Runtime, bundles: BundleFactory,
                                           cid: str) -> None:
    """All four ids of each kind are switched, the groups are exactly the listed ones
    (root's group 0 dropped), and the umask reaches the process."""
    bundle = bundles.make(
        probe_script({"id": "id -u; id -g", "umask": "umask",
                      "status": "cat /proc/self/status",
                      "file": "cd /tmp && touch f-$$ && stat -c %a f-$$ && rm f-$$"}),
        process={"user": {"uid": 1000, "gid": 1001, "additionalGids": [5, 65534],
                          "umask": 0o027}},
        extra_mounts=[{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                       "options": ["mode=1777"]}])
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["id"] == "1000\n1001\n"
    assert out["umask"].strip() == "0027"
    status = parse_status(out["status"])
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1001"] * 4
    assert sorted(int(g) for g in status["Groups"].split()) == [5, 65534]
    assert out["file"].strip() == "640", "a new file must get 0666 & ~umask"


def test_root_user_has_no_supplementary_groups_by_default(rt: Runtime, bundles: BundleFactory,
                                                          cid: str) -> None:
    """The host's groups of the caller must not leak into the container."""
    out = rt.run(cid, bundles.make(["cat", "/proc/self/status"])).ok().stdout
    assert parse_status(out)["Groups"] == ""


def test_env_and_cwd(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """The process gets exactly process.env (nothing of the caller's environment,
    no LISTEN_FDS...) and starts in process.cwd."""
    env = ["PATH=/bin:/sbin", "FOO=bar baz", "EMPTY=", "EQUALS=a=b", "HOME=/nowhere",
           f"PYRUNTIME_IT_TOKEN={rt.token}"]
    # PID 1 is the shell: it must not exec the reader (hence the pipe), or the
    # environ it opened would belong to a replaced process and read as empty
    probes = {"pwd": "pwd", "environ": "cat /proc/1/environ | tr '\\0' '\\n'"}
    bundle = bundles.make(probe_script(probes), process={"env": env, "cwd": "/home/user"})
    out = sections(rt.run(cid, bundle).ok().stdout)
    assert out["pwd"] == "/home/user\n"
    assert sorted(out["environ"].splitlines()) == sorted(env)


@pytest.mark.parametrize("uid, home", [(0, "/root"), (1000, "/home/user"), (4242, "/")])
def test_home_defaults_from_the_containers_passwd(rt: Runtime, bundles: BundleFactory,
                                                  cid: str, uid: int, home: str) -> None:
    """Without HOME in env, runc sets it from the rootfs's /etc/passwd (or /)."""
    bundle = bundles.make(["sh", "-c", "echo $HOME"], process={"user": {"uid": uid, "gid": uid}})
    assert rt.run(cid, bundle).ok().stdout == f"{home}\n"


def test_relative_executable_is_found_from_cwd(rt: Runtime, bundles: BundleFactory,
                                               cid: str) -> None:
    """args[0] has execvp's semantics (config.md): ./echo in cwd /bin is /bin/echo.
    runc runs this."""
    bundle = bundles.make(["./echo", "relative-ok"], process={"cwd": "/bin"})
    assert rt.run(cid, bundle).ok().stdout == "relative-ok\n"


def test_cwd_that_does_not_exist_fails_at_create(rt: Runtime, bundles: BundleFactory,
                                                 cid: str) -> None:
    result = rt.create(cid, bundles.make(["true"], process={"cwd": "/no-such-dir"}))
    assert_one_line_error(result, "/no-such-dir")
    assert not (rt.root / cid).exists()


def test_rlimits(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """Soft and hard limits, each as given (soft below hard to tell them apart)."""
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
               {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192},
               {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
               {"type": "RLIMIT_MSGQUEUE", "soft": 1000, "hard": 2000}]
    bundle = bundles.make(["cat", "/proc/self/limits"], process={"rlimits": rlimits})
    limits = parse_limits(rt.run(cid, bundle).ok().stdout)
    assert limits["Max open files"] == ("512", "1000")
    assert limits["Max core file size"] == ("4096", "8192")
    assert limits["Max processes"] == ("300", "400")
    assert limits["Max msgqueue size"] == ("1000", "2000")


@pytest.mark.parametrize("enabled, expected", [(True, "1"), (False, "0")])
def test_no_new_privileges(rt: Runtime, bundles: BundleFactory, cid: str, enabled: bool,
                           expected: str) -> None:
    bundle = bundles.make(["cat", "/proc/self/status"], process={"noNewPrivileges": enabled})
    assert parse_status(rt.run(cid, bundle).ok().stdout)["NoNewPrivs"] == expected


CAPS = {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "ambient": ["CAP_NET_BIND_SERVICE"]}


def _caps_of(rt: Runtime, bundles: BundleFactory, cid: str, uid: int,
             capabilities: dict[str, list[str]]) -> dict[str, int]:
    bundle = bundles.make(["cat", "/proc/self/status"],
                          process={"user": {"uid": uid, "gid": uid},
                                   "capabilities": capabilities, "noNewPrivileges": False})
    status = parse_status(rt.run(cid, bundle).ok().stdout)
    return {key: int(status[key], 16) for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def test_capabilities_of_a_non_root_user(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """After execve(2) of a file without capabilities, a non-root process keeps the
    inheritable and bounding sets as set, and its permitted and effective sets are
    its ambient set (capabilities(7)); so every set the runtime got wrong shows."""
    caps = _caps_of(rt, bundles, cid, 1000, CAPS)
    assert caps == {"CapInh": cap_mask(CAPS["inheritable"]),
                    "CapPrm": cap_mask(CAPS["ambient"]),
                    "CapEff": cap_mask(CAPS["ambient"]),
                    "CapBnd": cap_mask(CAPS["bounding"]),
                    "CapAmb": cap_mask(CAPS["ambient"])}


def test_capabilities_of_root(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    """For uid 0 (no no_new_privs) execve makes permitted = effective =
    bounding | inheritable (capabilities(7), "root" rules)."""
    caps = _caps_of(rt, bundles, cid, 0, CAPS)
    expected_prm = cap_mask(CAPS["bounding"]) | cap_mask(CAPS["inheritable"])
    assert caps == {"CapInh": cap_mask(CAPS["inheritable"]), "CapPrm": expected_prm,
                    "CapEff": expected_prm, "CapBnd": cap_mask(CAPS["bounding"]),
                    "CapAmb": cap_mask(CAPS["ambient"])}


def test_empty_capability_sets_leave_nothing(rt: Runtime, bundles: BundleFactory,
                                             cid: str) -> None:
    """Even root keeps nothing when all five sets are empty."""
    caps = _caps_of(rt, bundles, cid, 0, {kind: [] for kind in CAPS})
    assert caps == dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)


def test_positive_oom_score_adj(rt: Runtime, bundles: BundleFactory, cid: str) -> None:
    bundle = bundles.make(["cat", "/proc/self/oom_score_adj"], process={"oomScoreAdj": 523})
    assert rt.run(cid, bundle).ok().stdout == "523\n"


def test_negative_oom_score_adj_fails_clearly(rt: Runtime, bundles: BundleFactory,
                                              cid: str) -> None:
    """This host lacks CAP_SYS_RESOURCE (see CapBnd of /proc/self/status), so lowering
    oom_score_adj must fail, and say so, rather than be skipped."""
    if int(parse_status(Path("/proc/self/status").read_text())["CapEff"], 16) >> 24 & 1:
        pytest.skip("this host has CAP_SYS_RESOURCE: a negative oom_score_adj would work")
    result = rt.create(cid, bundles.make(["true"], process={"oomScoreAdj": -100}))
    assert_one_line_error(result, "oom_score_adj")
    assert not (rt.root / cid).exists()


# --- file descriptors -------------------------------------------------------------
def test_no_extra_descriptors_reach_the_process(rt: Runtime, bundles: BundleFactory,
                                                cid: str, test_dir: Path) -> None:
    """Only 0, 1, 2 (and the folder ``ls`` opens, 3) even when the caller had fd 3
    open: nothing of pyruntime's (state folder, pipes, fifo) leaks (CVE-2024-21626)."""
    secret = test_dir / "fd3.txt"
    secret.write_text("secret")
    result = rt.run(cid, bundles.make(["ls", "/proc/self/fd"]), fd3=secret)
    assert sorted(result.ok().stdout.split(), key=int) == ["0", "1", "2", "3"]


def test_preserve_fds_passes_fd_3(rt: Runtime, bundles: BundleFactory, cid: str,
                                  test_dir: Path) -> None:
    """--preserve-fds 1: the caller's fd 3 is the process's fd 3 (its content
    proves it is the same file), and nothing more is passed."""
    passed = test_dir / "fd3.txt"
    passed.write_text(f"preserved-{rt.token}")
    bundle = bundles.make(probe_script({"fds": "ls /proc/self/fd", "content": "cat <&3"}))
    out = sections(rt.run(cid, bundle, "--preserve-fds", "1", fd3=passed).ok().stdout)
    assert sorted(out["fds"].split(), key=int) == ["0", "1", "2", "3", "4"]
    assert out["content"] == f"preserved-{rt.token}\n"


def test_preserve_fds_of_a_closed_descriptor_is_refused(rt: Runtime, bundles: BundleFactory,
                                                        cid: str) -> None:
    result = rt.run(cid, bundles.make(["true"]), "--preserve-fds", "1")
    assert_one_line_error(result, "preserve-fds")
    assert not (rt.root / cid).exists()
