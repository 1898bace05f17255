# Packaging targets; included by the top-level Makefile (`include mk/packaging.mk`).
# `make assets`: man page and shell completions into target/assets.
# `make deb` / `make rpm`: packages in target/debian / target/generate-rpm.

CARGO ?= cargo
ASSETS_DIR ?= target/assets

.PHONY: assets release-bin deb rpm cargo-deb cargo-generate-rpm

assets:
	$(CARGO) run --quiet -p xtask -- assets $(ASSETS_DIR)

release-bin:
	$(CARGO) build --release --locked

cargo-deb:
	@$(CARGO) deb --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-deb

cargo-generate-rpm:
	@$(CARGO) generate-rpm --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-generate-rpm

deb: cargo-deb release-bin assets
	$(CARGO) deb --no-build

rpm: cargo-generate-rpm release-bin assets
	$(CARGO) generate-rpm
