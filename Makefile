# Rampart build and test targets. `make test` is what CI runs (.ci/run reads
# it from README.md).
GO ?= go
PKGS := ./...

.PHONY: build test lint vet fmt-check bench fuzz run

build:
	$(GO) build -o bin/rampart ./cmd/rampart

run:
	$(GO) run ./cmd/rampart serve

fmt-check:
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

test: fmt-check vet
	$(GO) test -race -timeout 15m $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 $(PKGS)

FUZZTIME ?= 30s
fuzz:
	$(GO) test ./misp/ -run '^$$' -fuzz '^FuzzParseFreetext$$' -fuzztime $(FUZZTIME)
	$(GO) test ./misp/ -run '^$$' -fuzz '^FuzzParseCSV$$' -fuzztime $(FUZZTIME)
	$(GO) test ./misp/ -run '^$$' -fuzz '^FuzzParseEvent$$' -fuzztime $(FUZZTIME)
	$(GO) test ./misp/ -run '^$$' -fuzz '^FuzzParsePrefix$$' -fuzztime $(FUZZTIME)
	$(GO) test ./api/ -run '^$$' -fuzz '^FuzzParseAddr$$' -fuzztime $(FUZZTIME)
