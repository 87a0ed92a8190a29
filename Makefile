# ovnsec: build, test and demo entry points. See README.md.
GO      ?= go
BIN     := bin
PKGS    := ./...

.PHONY: all build test unit vet deps fuzz-smoke bench-smoke clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

deps:
	scripts/install-deps.sh

vet:
	$(GO) vet $(PKGS)

# unit: fast tests only (no namespaces, no daemons).
unit:
	$(GO) test -short -count=1 $(PKGS)

# test: the full suite as CI runs it: installs what it needs, vets, runs unit
# and integration tests (real ovsdb-server, ovs-appctl, charon, ovs-vswitchd in
# network namespaces) and a one-iteration smoke run of every benchmark.
test: deps vet
	$(GO) test -count=1 -timeout 35m $(PKGS)
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x $(PKGS)
	bash bench/lib/table_test.sh

clean:
	rm -rf $(BIN)

# demo: a 3-chassis OVN cluster in network namespaces with ovnsecd on every
# chassis, traffic before and after ipsec=true (scripts/demo.sh, docs/DEMO.md).
# DEMO_KEEP=1 leaves it running; demo-down removes it.
.PHONY: demo demo-down
demo:
	scripts/demo.sh run

demo-down:
	scripts/demo.sh down

# deb: the Debian package (static ovnsecd and ovnsec, the systemd units of
# deploy/systemd, /etc/default/ovnsecd) in bin/, made with nfpm by
# packaging/mkdeb (packaging/nfpm.yaml). VERSION=0.1.0 sets the version
# built in and packaged; by default it is the one ovnsecd reports.
.PHONY: deb
deb:
	$(GO) run ./packaging/mkdeb -out $(BIN) $(if $(VERSION),-version $(VERSION))
