# `make bench`: floatip against keepalived and ucarp in network namespaces
# (xtask/src/bench/, run as `cargo run --release -p xtask -- bench`). Writes
# target/bench/results.json, docs/benchmarks.md and docs/benchmarks.svg.
# Needs root. About 25 minutes; a 1-repetition smoke run:
# `BENCH_QUICK=1 make bench`; more or fewer repetitions: `BENCH_REPS=10 make bench`;
# the IPv6 rows (a dual-stack pair against keepalived) alone, about 6 minutes:
# `BENCH_SCENARIOS=ipv6 make bench`.
# `make bench-soak`: the 10-minute flap soak of the 10 ms setting (5 % random
# frame loss on the switch, CPU hogs) alone; it adds its row to the results.
CARGO ?= cargo
# Commands the bench runs, with the Debian package that provides each.
BENCH_APT_NEEDS := keepalived:keepalived ucarp:ucarp ip:iproute2 nft:nftables etcd:etcd-server

.PHONY: bench bench-soak bench-deps

bench-deps:
	@[ "$$(id -u)" = 0 ] || { echo "make bench needs root (it creates network namespaces): sudo make bench"; exit 1; }
	@missing=""; for pair in $(BENCH_APT_NEEDS); do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  command -v apt-get >/dev/null 2>&1 || { echo "bench: missing packages:$$missing (no apt-get here: install them by hand)"; exit 1; }; \
	  echo "bench: installing:$$missing"; \
	  echo "+ apt-get update"; apt-get update || exit 1; \
	  echo "+ apt-get install -y$$missing"; DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing || exit 1; \
	  echo "bench: note: the keepalived package may have enabled its system service; the bench runs its own instances only"; \
	fi

bench: bench-deps
	$(CARGO) build --release -p floatip
	$(CARGO) run --release -p xtask -- bench

bench-soak: bench-deps
	$(CARGO) build --release -p floatip
	$(CARGO) run --release -p xtask -- bench-soak
