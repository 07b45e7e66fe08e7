"""linux.netDevices names, checked as the kernel checks them, before anything moves."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyruntime.errors import ConfigError
from pyruntime.plan.netdevices import NetDevicePlan, plan_net_devices
from pyruntime.spec import validate
from pyruntime.spec.model import Spec


def test_entries_become_moves_in_order() -> None:
    plans = plan_net_devices({"eth1": {"name": "ctr0"}, "ens4": {}, "veth9": {"name": ""}})
    assert [(p.host_name, p.name) for p in plans] == [("eth1", "ctr0"), ("ens4", "ens4"),
                                                       ("veth9", "veth9")]
    assert plans[0].field == 'linux.netDevices["eth1"]'
    assert plan_net_devices(None) == [] and plan_net_devices({}) == []


def test_a_trailing_percent_d_is_a_template() -> None:
    plans = plan_net_devices({"a": {"name": "eth%d"}, "b": {"name": "eth%d"}})
    assert all(p.is_template for p in plans)  # the kernel numbers them: no clash
    assert not NetDevicePlan("a", "eth0").is_template


@pytest.mark.parametrize(("raw", "field", "needle"), [
    ({"eth1": {"name": "a-name-of-16-chr"}}, 'linux.netDevices["eth1"].name', "longer than 15"),
    ({"a-name-of-16-chr": {}}, 'linux.netDevices["a-name-of-16-chr"]', "longer than 15"),
    ({"eth1": {"name": "ctr/0"}}, 'linux.netDevices["eth1"].name', "'/'"),
    ({"eth/1": {}}, 'linux.netDevices["eth/1"]', "'/'"),
    ({"eth1": {"name": "a b"}}, 'linux.netDevices["eth1"].name', "' '"),
    ({"eth1": {"name": "a:b"}}, 'linux.netDevices["eth1"].name', "':'"),
    ({"eth1": {"name": "."}}, 'linux.netDevices["eth1"].name', "not a valid"),
    ({"..": {}}, 'linux.netDevices[".."]', "not a valid"),
    ({"": {}}, 'linux.netDevices[""]', "must not be empty"),
    ({"eth%d": {}}, 'linux.netDevices["eth%d"]', "'%'"),  # a host device is not a template
    ({"eth1": {"name": "eth%dx"}}, 'linux.netDevices["eth1"].name', "prefix followed by"),
    ({"eth1": {"name": "%d"}}, 'linux.netDevices["eth1"].name', "prefix followed by"),
    ({"eth1": {"name": "e%d%d"}}, 'linux.netDevices["eth1"].name', "prefix followed by"),
    ({"eth1": {"name": 7}}, 'linux.netDevices["eth1"].name', "must be a string"),
    ({"eth1": "ctr0"}, 'linux.netDevices["eth1"]', "must be an object"),
    ({"eth1": {"name": "ctr0"}, "eth2": {"name": "ctr0"}}, 'linux.netDevices["eth2"].name',
     'also the name of linux.netDevices["eth1"]'),
    ({"eth1": {}, "eth2": {"name": "eth1"}}, 'linux.netDevices["eth2"].name',
     'also the name of linux.netDevices["eth1"]'),
    ({"eth2": {"name": "eth1"}, "eth1": {}}, 'linux.netDevices["eth1"]',
     'also the name of linux.netDevices["eth2"]'),
    (["eth1"], "linux.netDevices", "must be an object"),
])
def test_bad_entries_name_their_field(raw: object, field: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_net_devices(raw)
    assert caught.value.field == field
    assert needle in caught.value.problem
    assert "\n" not in str(caught.value)


def test_fifteen_characters_is_the_longest_name() -> None:
    assert plan_net_devices({"a23456789012345": {"name": "b234567890123%d"}})


def _spec(namespaces: list[dict[str, str]]) -> Spec:
    return Spec({"ociVersion": "1.3.0", "linux": {"namespaces": namespaces,
                                                  "netDevices": {"eth1": {}}}}, "/b", "/b/r")


def test_a_network_namespace_is_needed() -> None:
    with pytest.raises(ConfigError) as caught:
        validate.check_net_devices(_spec([{"type": "mount"}]))
    assert caught.value.field == 'linux.netDevices["eth1"]'
    assert "network namespace" in caught.value.problem


def test_only_a_new_network_namespace_gets_devices() -> None:
    validate.check_net_devices(_spec([{"type": "network"}]))
    with pytest.raises(ConfigError, match="needs a new network namespace"):
        validate.check_net_devices(_spec([{"type": "network", "path": "/proc/1/ns/net"}]))


def test_netdevices_module_imports_no_pyroute2() -> None:
    """pyroute2 costs 300-400 ms: only a config with netDevices may pay it."""
    code = ("import sys, pyruntime.netdevices, pyruntime.lifecycle, pyruntime.process.parent; "
            "print('pyroute2' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, check=True)
    assert result.stdout.strip() == "False"
