# mydaemon — build, test, lint, install, run, bench.
#   make build | test | lint | install | uninstall | run | bench
# Variables: PREFIX (default /usr/local), DESTDIR (staging root), CARGO.

PREFIX  ?= /usr/local
DESTDIR ?=
CARGO   ?= cargo
SHELL   := /bin/bash

BIN       := target/release/mydaemon
BINDIR    := $(DESTDIR)$(PREFIX)/bin
UNITDIR   := $(DESTDIR)$(PREFIX)/lib/systemd/system
MANDIR    := $(DESTDIR)$(PREFIX)/share/man/man1
BASHCOMP  := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
# The flags units/mydaemon.service was generated with (the drift test uses the same).
UNIT_FLAGS = unit --exec-path $(PREFIX)/bin/mydaemon

.PHONY: all build test lint install uninstall run bench units clean

all: build

build:
	$(CARGO) build --release --locked

## test: unit, host and real-systemd box tests, each in its own process with a 2-minute
## limit (cargo-nextest), then the doc tests. The box tests need root: without it they
## show as skipped; MYDAEMON_REQUIRE_BOX=1 makes them run whoever you are (CI sets it).
test:
	bash tests/run-suite

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --no-deps

## units: regenerate units/mydaemon.service (what `make install` installs for PREFIX=/usr/local).
units: build
	$(BIN) $(UNIT_FLAGS) > units/mydaemon.service.tmp && mv units/mydaemon.service.tmp units/mydaemon.service

install: build
	install -Dm755 $(BIN) $(BINDIR)/mydaemon
	install -d $(UNITDIR) $(MANDIR) $(BASHCOMP)
	if [ "$(PREFIX)" = /usr/local ]; then \
	  install -m644 units/mydaemon.service $(UNITDIR)/mydaemon.service; \
	else \
	  $(BIN) $(UNIT_FLAGS) > $(UNITDIR)/mydaemon.service && chmod 644 $(UNITDIR)/mydaemon.service; \
	fi
	$(BIN) man --out-dir $(MANDIR)
	$(BIN) completions bash > $(BASHCOMP)/mydaemon

uninstall:
	rm -f $(BINDIR)/mydaemon $(UNITDIR)/mydaemon.service $(BASHCOMP)/mydaemon
	rm -f $(MANDIR)/mydaemon.1 $(MANDIR)/mydaemon-*.1

## run: build, start the daemon the way this machine allows, show its status.
## Under systemd the binary is copied to $(PREFIX)/bin first: the service's dynamic user
## cannot reach one in a clone under /root or /home.
run: build
	@if [ -d /run/systemd/system ]; then \
	  install -Dm755 $(BIN) $(BINDIR)/mydaemon && \
	  $(BINDIR)/mydaemon install --systemd --now && $(BINDIR)/mydaemon status; \
	else \
	  echo "systemd is not running here: using the PID-file backend"; \
	  $(BIN) start && $(BIN) status; \
	fi

## bench: ratios against references measured in the same run (boots the test box).
bench: build
	bash bench/run

clean:
	$(CARGO) clean
