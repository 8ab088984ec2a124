# isulad-go: build, install, test, demo.
#
#   make build     binaries into bin/ (static: CGO_ENABLED=0; the isula front and the light
#                  shim are C, built static with cc by scripts/build-front.sh and
#                  scripts/build-shim-lite.sh)
#   make install   binaries, systemd unit and bash completion onto this host (root)
#   make test      go vet, staticcheck, unit tests with -race, integration tests, short fuzz runs
#                  (root; see .ci/run)
#   make unit      unit tests (every package but test/integration) with -race
#   make integration  test/integration: real daemons (root, runc, crun, busybox-static)
#   make critest   critest (cri-tools v1.37.0) against a private daemon, stand-in images from a
#                  private registry (scripts/critest.sh; docs/cri.md)
#   make staticcheck  staticcheck, built once into TOOLS_CACHE
#   make e2e-kube  scripts/e2e-kube.sh: a real kubelet (etcd, kube-apiserver, kubectl) runs a pod
#                  with a system container and a host channel on this daemon's CRI (root)
#   make demo      scripts/demo.sh: build, install, rootfs, daemon, a system container with a host channel
#   make fuzz      every Fuzz target for FUZZTIME (default 50000x: a count of inputs) each
#   make bench     benchmarks (bench/run.sh if present, else go test -bench)
#   make syscheck  raw runc/crun boot checks of the system-container OCI config (docs/notes)
#   make rootfs    busybox rootfs at ROOTFS (default /root/myrootfs)
#   make clean

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

GO          ?= go
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
DESTDIR     ?=
UNITDIR     ?= /etc/systemd/system
COMPLETIONDIR ?= /usr/share/bash-completion/completions
CGO_ENABLED ?= 0
GOFLAGS_BUILD ?= -trimpath
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
MOD         := github.com/isulad-go/isulad
LDFLAGS     ?= -s -w -X $(MOD)/internal/daemon.GitCommit=$(COMMIT) -X $(MOD)/internal/cli.GitCommit=$(COMMIT)
TEST_TIMEOUT ?= 60m
# A count, not a duration: with a duration, Go's fuzz coordinator (go1.26) can fail a target
# with a bare "context deadline exceeded" at the deadline, no crasher involved
# (go.dev/issue/75804, fixed in go1.27). A count has no deadline to race.
FUZZTIME    ?= 50000x
ROOTFS      ?= /root/myrootfs
# Tools built from source, kept outside the clone, one directory per tool and version (so a
# version bump builds anew and CI can cache the directory between runs).
TOOLS_CACHE ?= /var/cache/isulad-tools
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(TOOLS_CACHE)/staticcheck-$(STATICCHECK_VERSION)/staticcheck

export CGO_ENABLED

.PHONY: all build install uninstall test vet staticcheck unit integration critest e2e-kube fuzz bench demo syscheck rootfs rootfs-debian clean

all: build

build:
	@mkdir -p bin
	$(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...
	scripts/build-front.sh bin/isula
	scripts/build-shim-lite.sh bin/isulad-shim-lite
	@ls -1 bin/

install: build
	install -d $(DESTDIR)$(BINDIR)
	@for b in bin/*; do \
		echo "install $$b -> $(DESTDIR)$(BINDIR)/$${b##*/}"; \
		install -m 0755 "$$b" "$(DESTDIR)$(BINDIR)/$${b##*/}.new" && \
		mv -f "$(DESTDIR)$(BINDIR)/$${b##*/}.new" "$(DESTDIR)$(BINDIR)/$${b##*/}"; \
	done
	install -d $(DESTDIR)$(UNITDIR)
	install -m 0644 contrib/systemd/isulad.service $(DESTDIR)$(UNITDIR)/isulad.service
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
	@if [ -x bin/isula ] && bin/isula completion bash >/dev/null 2>&1; then \
		install -d $(DESTDIR)$(COMPLETIONDIR); \
		bin/isula completion bash > $(DESTDIR)$(COMPLETIONDIR)/isula; \
		echo "bash completion -> $(DESTDIR)$(COMPLETIONDIR)/isula"; \
	else echo "isula has no 'completion bash'; skipping shell completion"; fi

uninstall:
	@for b in bin/*; do rm -f "$(DESTDIR)$(BINDIR)/$${b##*/}"; done
	rm -f $(DESTDIR)$(UNITDIR)/isulad.service $(DESTDIR)$(COMPLETIONDIR)/isula

# The test command of the README and of .ci/run: vet, staticcheck, the unit tests with the race
# detector, test/integration (real daemons on private --graph/--state/-H; they need root, runc,
# crun, busybox-static, debootstrap) and short fuzz runs. A test whose prerequisite is missing
# skips saying why, and fails when CI is set (internal/testenv). crun needs the hugetlb
# controller on a v1 hierarchy on this host's hybrid cgroup layout. The move is host-wide, so it
# is done once around the whole run (never inside a test, where it would race with other
# packages' containers) and undone at the end.
test:
	@status=0; scripts/cgroup-hugetlb.sh move || true; \
	$(MAKE) vet staticcheck unit integration critest fuzz || status=$$?; \
	scripts/cgroup-hugetlb.sh restore || true; \
	exit $$status

vet:
	$(GO) vet ./...

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

$(STATICCHECK):
	@mkdir -p $(@D)
	GOBIN=$(@D) CGO_ENABLED=0 $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# -race needs cgo (and a C compiler) for the test binaries only; the binaries that are built
# and installed stay static (CGO_ENABLED=0), and test/integration builds its own that way.
# shmring's truncation tests cannot run under -race (they skip there, saying why): they run
# again without it.
unit:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v '/test/integration$$')
	$(GO) test -count=1 -run '^TestTruncate' ./pkg/shmring

integration:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./test/integration/...

# The daemon of bin/, its own registry of stand-in images, every critest spec that can run here
# (the others skipped by name, with the reason, in scripts/critest.sh and docs/cri.md).
critest: build
	scripts/critest.sh

# kubelet, kube-apiserver and kubectl come from scripts/tools.sh (built once into TOOLS_CACHE,
# ~20 minutes cold here); the rest is docs/cri.md "With kubelet".
e2e-kube: build
	TOOLS_CACHE=$(TOOLS_CACHE) ISULAD_BIN=$(CURDIR)/bin scripts/e2e-kube.sh

# Each Fuzz target alone (go test -fuzz takes one target in one package at a time).
fuzz:
	@set -e; found=0; \
	for pkg in $$($(GO) list ./...); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for f in $$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' $$dir/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u); do \
			found=1; echo "== fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done; \
	[ $$found = 1 ] || echo "no fuzz targets"

bench:
	@if [ -x bench/run.sh ]; then bench/run.sh; \
	else $(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...; fi

demo:
	scripts/demo.sh

syscheck:
	@set -e; for rt in runc crun; do for k in debian busybox; do scripts/syscontainer-check.sh $$rt $$k; done; done

rootfs:
	scripts/mkrootfs.sh busybox $(ROOTFS)

rootfs-debian:
	scripts/mkrootfs.sh debian /var/lib/isulad-rootfs/debian

clean:
	rm -rf bin
