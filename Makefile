# vigil — build, run and test on Debian 12. `make run` and `make test` install what they need.

SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Build needs: libsystemd (journal, sd-bus), ISA-L (gzip), libyaml (configuration file).
BUILD_PACKAGES := libsystemd-dev libisal-dev libyaml-dev pkg-config
# Tests also start real components: Prometheus and promtool, node_exporter for side-by-side parity,
# journald and journal-remote for the journal, systemd and dbus booted in a private namespace.
TEST_PACKAGES := $(BUILD_PACKAGES) prometheus prometheus-node-exporter systemd systemd-journal-remote dbus \
	util-linux iproute2 curl binutils openssl

ARGS ?=

.PHONY: run test build release deb install-build-deps install-test-deps check-foundation format lint bench bench-node bench-containers bench-systemd bench-journal clean

define apt_install
	@missing="$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

install-build-deps:
	$(call apt_install,$(BUILD_PACKAGES))

install-test-deps:
	$(call apt_install,$(TEST_PACKAGES))

build: install-build-deps
	$(SWIFT) build

# Release binary: static Swift runtime, stripped of nothing the operator needs.
release: install-build-deps
	$(SWIFT) build -c release --static-swift-stdlib

# The Debian package (binary, systemd unit, default configuration, the vigil user) in .build/deb/.
deb: release
	$(call apt_install,binutils)
	sh packaging/build-deb.sh .build/release/vigil .build/deb

# Runs the agent on :9100 (pass flags with ARGS="--web.listen-address=:9200 ...").
run: release
	./.build/release/vigil $(ARGS)

# Unit tests, fixture tests and end-to-end tests against the real components. Tests run one at a time:
# several of them measure that a scrape returns on time, which a neighbour blocking the test runner's
# threads would distort.
test: install-test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel
	$(MAKE) --no-print-directory check-foundation

# Foundation (and with it ICU) must stay out of the binary: FoundationEssentials is fine.
check-foundation:
	@bin=.build/debug/vigil; [ -x $$bin ] || $(SWIFT) build --product vigil; \
	if objdump -p $$bin | grep -E 'NEEDED +(libFoundation\.so|libFoundationInternationalization\.so|lib_FoundationICU\.so)'; then \
		echo "error: $$bin links Foundation"; exit 1; \
	fi; echo "check-foundation: no Foundation in $$bin"

format:
	$(SWIFT) format format --in-place --recursive --parallel Package.swift Sources collectors Tests

lint:
	$(SWIFT) format lint --strict --recursive --parallel Package.swift Sources collectors Tests

# Every side-by-side benchmark; each prints its figures as ratios against the reference it replaces.
bench: bench-node bench-containers bench-systemd bench-journal

# vigil vs node_exporter on this host, same collectors: CPU per scrape, steady RSS, latency under load.
bench-node: release install-test-deps
	python3 Benchmarks/node_exporter_compare.py --vigil .build/release/vigil $(ARGS)

# Cost of the containers collector at 100, 500 and 1,000 containers (generated cgroup trees, v1 hybrid and v2).
bench-containers: release
	python3 Benchmarks/containers_bench.py --binary .build/release/vigil $(ARGS)

# The systemd collector against a namespaced systemd with 300 units: wall and CPU time per scrape.
# ARGS="--private" talks to systemd directly; ARGS="--units 170" for about 300 units in all.
bench-systemd: release install-test-deps
	$(call apt_install,python3)
	python3 Benchmarks/systemd_bench.py --binary .build/release/vigil $(ARGS)

# The journal forwarder (journal files → vigil → the strict forward receiver) against journalctl reading
# the same files, in one run: throughput, CPU per entry, memory and CPU ratios. ARGS="--entries 500000".
bench-journal: release install-test-deps
	$(SWIFT) build -c release --product forward-receiver
	python3 Benchmarks/journal_forward_compare.py --vigil .build/release/vigil $(ARGS)

clean:
	rm -rf .build
