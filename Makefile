# vpcvpn. CI runs `make test` on Linux as root; see README.md.

# sudo's PATH usually lacks Go's directory: find it anyway.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/vpcvpn/vpcvpn/cmd/vpcvpn/cli.Version=$(VERSION)

# Every package but the Linux-only lab and end-to-end tests.
PRODUCT_PKGS = $(shell $(GO) list ./... | grep -v /integration)

.PHONY: all build test crossbuild bench fuzz demo deps lint clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/vpcvpn ./cmd/vpcvpn

# Unit tests with the race detector, fuzz seeds (go test runs every seed
# corpus), then every fuzz target for TEST_FUZZTIME each (make fuzz for
# longer), the integration lab when root (it skips with a reason otherwise),
# and the cross-builds.
TEST_FUZZTIME ?= 3s
test: build
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 10m $(PRODUCT_PKGS)
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME) FUZZMINIMIZETIME=1s
	VPCVPN_BIN=$(CURDIR)/bin/vpcvpn $(GO) test -count=1 -timeout 20m ./integration/...
	$(MAKE) crossbuild

# The whole module builds and vets for macOS and Windows too, so a
# contributor there can build and run the unit tests; the lab, its commands
# and the end-to-end tests are Linux-only (build-constrained). The binary
# itself is built first, for a clear error when the product alone breaks.
CROSS_TARGETS = darwin/arm64 darwin/amd64 windows/amd64
crossbuild:
	@set -e; for t in $(CROSS_TARGETS); do \
	  echo "== $$t"; \
	  GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -o /dev/null ./cmd/vpcvpn; \
	  GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build ./...; \
	  GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) vet ./...; \
	done

# The lab benchmark: vpcvpn against ssh -L, sshuttle and a bare x/crypto/ssh
# forwarder on the same sshd, vpcvpn over the emulated SSM (labbench
# builds awsemu itself), and vpcvpn beside the Wego chain (sshuttle over ssh
# through AWS's aws CLI and session-manager-plugin) over the same emulated
# service; medians of BENCH_RUNS runs (the Wego chain's at most 3), printed
# as tables.
BENCH_RUNS ?= 5
bench: build
	$(GO) run ./integration/cmd/labbench -vpcvpn $(CURDIR)/bin/vpcvpn -runs $(BENCH_RUNS)

# Each fuzz target for FUZZTIME (go test fuzzes one target per run). New
# inputs that widen coverage are minimized for at most FUZZMINIMIZETIME, which
# otherwise eats the run. A failing input is written to the package's
# testdata/fuzz/FuzzX/: keep it only as a named regression test's seed.
# Go 1.26's fuzzing coordinator can fail a target with a bare "context
# deadline exceeded" as -fuzztime runs out, having found nothing (a race
# fixed in Go 1.27, go.dev/issue/75804): a target that fails so, writing
# no failing input, runs once more.
FUZZTIME ?= 30s
FUZZMINIMIZETIME ?= 10s
fuzz:
	@list=$$($(GO) test -list '^Fuzz' ./...) || { echo "$$list"; exit 1; }; \
	targets=$$(echo "$$list" | awk '/^Fuzz/ { f = f " " $$1; next } \
	  /^ok/ { n = split(f, a, " "); for (i = 1; i <= n; i++) print $$2 "," a[i]; f = "" }'); \
	[ -n "$$targets" ] || { echo "no fuzz targets found"; exit 1; }; \
	for t in $$targets; do \
	  pkg=$${t%,*}; f=$${t#*,}; echo "== $$pkg $$f"; \
	  for try in 1 2; do \
	    out=$$($(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg 2>&1); \
	    rc=$$?; echo "$$out"; [ $$rc -eq 0 ] && break; \
	    if [ $$try -eq 1 ] && echo "$$out" | grep -q '^    context deadline exceeded$$' && \
	      ! echo "$$out" | grep -q 'Failing input written'; then \
	      echo "== $$f: the coordinator's deadline race, no failing input: once more"; continue; fi; \
	    exit 1; \
	  done; \
	done

# A local VPC lab in network namespaces with an emulated AWS, vpcvpn connecting
# to it over SSM with an ephemeral key (the demo builds awsemu itself), real
# queries through the tunnel, then teardown. Needs root: sudo make demo.
demo: deps build
	@# bin/ made under sudo stays the invoking user's, for their next make.
	@if [ -n "$${SUDO_UID:-}" ]; then chown -R "$$SUDO_UID:$$SUDO_GID" bin; fi
	$(GO) run ./integration/cmd/demo -vpcvpn $(CURDIR)/bin/vpcvpn

# What the lab, the tests and the demo need on Debian or Ubuntu.
deps:
	./integration/install-deps.sh

lint:
	$(GO) vet ./...
	@command -v staticcheck >/dev/null && staticcheck ./... || echo "staticcheck not installed: go install honnef.co/go/tools/cmd/staticcheck@latest"

clean:
	rm -rf bin
