# `make chaos`: random faults one at a time against a three-node floatip group in
# network namespaces, one line per fault and a summary; exits non-zero on any broken
# invariant and prints the seed that replays it (lab/src/chaos/, docs/chaos.md).
# Needs root. `CHAOS_MINUTES` (default 5) and `CHAOS_SEED` (default random), from the
# environment or the command line: `make chaos CHAOS_MINUTES=30 CHAOS_SEED=42`.
CARGO ?= cargo
CHAOS_MINUTES ?= 5

.PHONY: chaos

chaos:
	@[ "$$(id -u)" = 0 ] || { echo "make chaos needs root (it creates network namespaces): sudo make chaos"; exit 1; }
	@$(MAKE) --no-print-directory deps
	$(CARGO) build --release -p floatip
	CHAOS_MINUTES=$(CHAOS_MINUTES) $(if $(CHAOS_SEED),CHAOS_SEED=$(CHAOS_SEED)) $(CARGO) run --release --quiet -p xtask -- chaos
