# P2PD: `make run` builds and starts the app, `make test` runs every test.
# Both install what is missing first (Debian packages, Go tools).

GO        ?= go
BIN       := bin/p2pd
TOOLS     := $(CURDIR)/.tools
STATICCHECK_VERSION := v0.8.2
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: run build deps deps-test tools test vet lint unit bench screenshot clean

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
	$(GO) test -race -count=1 -parallel 8 -timeout 20m ./...

# Benchmarks report each figure next to its baseline from the same run
# (pipe vs raw socket; racing vs one strategy after another; a 1 GiB file
# by p2pd vs a raw TCP copy and croc); see the ratio columns. The root
# package's run in the NAT lab: connect times a few rounds each, the
# transfers once (each moves 5 GiB per link speed).
bench: deps-test $(TOOLS)/croc
	$(GO) test -run '^$$' -bench . -benchtime 2s $$($(GO) list ./... | grep -v '^p2pd$$')
	$(GO) test -run '^$$' -bench 'Connect|NAT' -benchtime 5x .
	$(GO) test -run '^$$' -bench Transfer -benchtime 1x -timeout 30m .

# croc, for the transfer benchmark, from the Go module proxy.
$(TOOLS)/croc:
	packaging/croc.sh $(TOOLS)

# Refreshes the README's screenshot from a real run of the app under Xvfb.
screenshot: deps-test
	P2PD_SCREENSHOT=$(CURDIR)/docs/screenshot.png $(GO) test -count=1 -run '^TestGUISmoke$$' .

clean:
	rm -rf bin $(TOOLS)
