# floatip — the two set-up commands are `make demo` and `make test` (as root on Linux).
CARGO ?= cargo
# Commands the demo and the tests run, with the Debian package that provides each.
APT_NEEDS := ip:iproute2 ping:iputils-ping ifconfig:net-tools nft:nftables etcd:etcd-server protoc:protobuf-compiler

.PHONY: all build deps demo demo-etcd test unit lint clean
all: build

build:
	$(CARGO) build --release

# Installs the missing tools where apt-get can, else stops with one line saying what to run.
deps:
	@missing=""; for pair in $(APT_NEEDS); do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing packages:$$missing — run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

demo: deps build
	@[ "$$(id -u)" = 0 ] || { echo "make demo needs root (it creates network namespaces): sudo make demo"; exit 1; }
	$(CARGO) run --release --quiet -p xtask -- demo

# The same partition with the LAN protocol and with `election: etcd`, side by side.
demo-etcd: deps build
	@[ "$$(id -u)" = 0 ] || { echo "make demo-etcd needs root (it creates network namespaces): sudo make demo-etcd"; exit 1; }
	$(CARGO) run --release --quiet -p xtask -- demo-etcd

# Unit tests, then the namespace integration tests (they skip with a message when not root).
test: deps
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast --test-threads 2; \
	else \
	  echo "cargo-nextest not found, using cargo test (install: cargo install --locked cargo-nextest)"; \
	  $(CARGO) test --workspace --no-fail-fast -- --test-threads 2; \
	fi

unit:
	$(CARGO) test --lib

# What CI checks before the tests: clippy on every crate and target, and rustfmt.
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all --check

clean:
	$(CARGO) clean

-include mk/*.mk
