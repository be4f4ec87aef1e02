# P2PD: `make run` builds and starts the app, `make test` runs every test.
# Both install what is missing first (Debian packages, Go tools).

GO        ?= go
BIN       := bin/p2pd
TOOLS     := $(CURDIR)/.tools
STATICCHECK_VERSION := v0.8.2
# The release is FyneApp.toml's Version; the binary reports it with the
# commit it was built from (0.1.0+26dd87b), and the package carries it.
APP_VERSION := $(shell sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
COMMIT    := $(shell git describe --always --dirty --exclude='*' 2>/dev/null)
VERSION   ?= $(APP_VERSION)$(if $(COMMIT),+$(COMMIT))
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: run build deps deps-test tools test vet lint unit bench fuzz screenshot clean
.PHONY: package install uninstall icon croc

run: build
	./$(BIN)

build: deps
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) .

deps:
	@packaging/deps.sh build

deps-test:
	@packaging/deps.sh test

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(TOOLS)/staticcheck

test: deps-test tools vet lint unit

vet:
	$(GO) vet ./...

lint:
	$(TOOLS)/staticcheck ./...

unit:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -race -count=1 -parallel 8 -timeout 20m -skip '^(TestOneGiB|TestPackageInstall)$$' ./...
	@# 1 GiB under the race detector takes minutes of both cores, which
	@# the lab's timing-sensitive tests running beside it would feel.
	$(GO) test -count=1 -run '^TestOneGiB$$' ./transfer
	@# So would the package's release build (make install, minutes when
	@# cold); -race reuses the test binary built above.
	$(GO) test -race -count=1 -timeout 20m -run '^TestPackageInstall$$' .

# Benchmarks report each figure next to its baseline from the same run
# (pipe vs raw socket; racing vs one strategy after another; a 1 GiB file
# by p2pd vs a raw TCP copy and croc); see the ratio columns. The root
# package's run in the NAT lab: connect times a few rounds each, the
# transfers once (each moves 5 GiB per link speed).
bench: deps-test croc
	$(GO) test -run '^$$' -bench . -benchtime 2s $$($(GO) list ./... | grep -v '^p2pd$$')
	$(GO) test -run '^$$' -bench 'Connect|NAT' -benchtime 5x .
	$(GO) test -run '^$$' -bench Transfer -benchtime 3x -timeout 40m .

# Fuzzes each parser of what peers and programs send, FUZZTIME each
# (make test runs their seed corpora as ordinary tests).
FUZZTIME ?= 60s
FUZZ = addr:FuzzParse signal:FuzzOpen stun:FuzzParseResponse rest:FuzzPaths \
	pipe:FuzzDecoders ../chat:FuzzServe ../transfer:FuzzReceiveFile ../transfer:FuzzCheckOffer \
	../transfer:FuzzCleanName
fuzz:
	@set -e; for f in $(FUZZ); do \
		echo "$${f#*:} ($${f%%:*}, $(FUZZTIME))"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$${f#*:}$$" -fuzztime $(FUZZTIME) ./netcore/$${f%%:*}/ 2>&1) \
			|| { echo "$$out" | grep -v '^fuzz: elapsed' | tail -30; exit 1; }; \
		echo "$$out" | tail -1; \
	done

# croc, for the transfer benchmark: the newest the module proxy serves.
croc:
	@packaging/gotool.sh $(TOOLS) croc github.com/schollz/croc/v10 v10.2.2

# Refreshes the README's screenshots (docs/screens, one per screen) from
# two real apps worked through their windows under Xvfb.
screenshot: deps-test
	P2PD_SCREENSHOTS=$(CURDIR)/docs/screens $(GO) test -count=1 -run '^TestGUITwoApps$$' .

# The Linux package: Fyne's packager makes the release build; the archive
# holds it with the desktop entry, icon and AppStream metadata from
# packaging/ and a Makefile (make user-install, sudo make install).
ARCHIVE ?= bin/p2pd-$(APP_VERSION)-linux-$(shell $(GO) env GOARCH).tar.xz
package:
	@packaging/deps.sh package
	@packaging/gotool.sh $(TOOLS) fyne fyne.io/tools/cmd/fyne v1.7.2 # for Fyne v2.7
	packaging/package.sh $(TOOLS)/fyne '$(VERSION)' '$(ARCHIVE)'

# Installs the package for you: ~/.local/bin/p2pd, and P2PD in the desktop's
# menu (PREFIX=/usr/local as root for everyone). uninstall removes it.
PREFIX ?= $(HOME)/.local
install: package
	@d=$$(mktemp -d) && tar -xJf '$(ARCHIVE)' -C "$$d" && \
		$(MAKE) -s -C "$$d/p2pd" install PREFIX='$(PREFIX)'; \
		s=$$?; rm -rf "$$d"; exit $$s

uninstall:
	@$(MAKE) -s -f packaging/archive.mk uninstall PREFIX='$(PREFIX)'

# Redraws assets/icon.png from its source, assets/icon.svg.
icon:
	$(GO) run ./packaging/icon

clean:
	rm -rf bin $(TOOLS)
