# pyruntime: `make demo` sets everything up and runs the busybox example;
# `make test` runs every test (CI runs it through .ci/run).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYRUNTIME := $(CURDIR)/$(VENV)/bin/pyruntime
APT_PACKAGES := runc crun busybox-static iproute2 util-linux libseccomp2 hyperfine \
	golang-github-containers-common qemu-system-x86
ROOTFS := bundles/busybox/rootfs

.PHONY: setup demo test unit integration conformance vm lint bench clean

setup: $(VENV)/.installed $(ROOTFS)/bin/busybox

$(VENV)/.installed: pyproject.toml
	@command -v busybox >/dev/null && command -v runc >/dev/null && command -v crun >/dev/null \
	  && command -v qemu-system-x86_64 >/dev/null && test -f /usr/share/containers/seccomp.json \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q --config-settings editable_mode=compat -e '.[test]'
	$(PY) -m compileall -q pyruntime
	tests/vm/build.sh
	touch $@

$(ROOTFS)/bin/busybox:
	bundles/build-rootfs.sh $(ROOTFS)

demo: setup
	cd bundles/busybox && $(PYRUNTIME) run demo-$$$$

lint: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest -q -n 2 tests/unit

integration: setup
	$(VENV)/bin/pytest -q -n 2 tests/integration

conformance: setup
	$(VENV)/bin/pytest -q -n 2 conformance --runtime $(PYRUNTIME) --runtime-name pyruntime \
	  --xfail-deviations
	$(VENV)/bin/pytest -q -n 2 conformance -m meta --runtime /usr/sbin/runc

vm: setup
	$(VENV)/bin/pytest -q -n 2 tests/vm

# the VM tests run on their own: a TCG guest is slow enough without the rest beside it
test: lint
	$(VENV)/bin/pytest -q -n 2 tests --ignore=tests/vm
	$(MAKE) vm
	$(MAKE) conformance

bench: setup
	$(MAKE) -C bench

clean:
	rm -rf $(VENV) $(ROOTFS) .pytest_cache .mypy_cache
