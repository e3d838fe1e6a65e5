# Picket. `make demo` runs the daemon against the simulated platform; `make test` runs
# every test. Needs only Go; the browser test installs Chromium from Debian when asked
# (see .ci/run).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test demo bench bench-scale lint resilience clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/picket ./cmd/picket

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 9m ./...

demo: build
	./bin/picket demo

# Go benchmarks, then the scheduler at 10,000 targets for SCALE_DURATION (table and JSON
# under bench/out/). bench-scale runs 1,000, 10,000 and 50,000 targets.
SCALE_DURATION ?= 60s
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...
	bench/run-scale.sh $(SCALE_DURATION) 10000

bench-scale:
	bench/run-scale.sh $(SCALE_DURATION) 1000 10000 50000

# Pass/fail: delivery under receiver faults and crashes, hostile targets, a flaky
# network, and every fuzz target for FUZZTIME (failing inputs are kept in testdata/fuzz
# as regression seeds).
FUZZTIME ?= 20s
FUZZ_TARGETS := FuzzParse:./config FuzzParse:./probe/tmpl FuzzCompile:./probe/expect \
	FuzzEvaluate:./probe/expect FuzzSilenceRequest:./alert/statuspage FuzzParseEvent:./alert/notify/pdtest \
	FuzzBuildMessage:./alert/notify/slack FuzzTCPExchangeLines:./probe
resilience:
	PICKET_RESILIENCE=1 $(GO) test -race -count=1 -timeout 10m ./bench/resilience/...
	@set -e; for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

clean:
	rm -rf bin picket-state
