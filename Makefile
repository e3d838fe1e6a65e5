# Picket. `make demo` runs the daemon against the simulated platform; `make test` runs
# every test. Needs only Go; the browser test installs Chromium from Debian when asked
# (see .ci/run).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test demo bench bench-scale bench-daemon soak lint resilience release image clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/picket ./cmd/picket

# The race run takes a third of the simulator's walks; the last line runs all 300 walks
# and 20 fleet walks again without the race detector (eight times faster).
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 9m ./...
	$(GO) test -count=1 -timeout 5m -run 'TestRandomWalks|TestFleetWalks' ./alert/sim/

demo: build
	./bin/picket demo

# Binaries (CGO off: static on linux) for every platform in PLATFORMS, picket-VERSION-OS-ARCH, and
# their SHA256SUMS, in DIST. `make release VERSION=v0.2.0` for a tagged one; CI builds
# one platform (PLATFORMS=linux/amd64) and checks the sums.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST      ?= dist
release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=$(DIST)/picket-$(VERSION)-$$os-$$arch; \
		echo "build $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/picket; \
	done
	cd $(DIST) && if command -v sha256sum >/dev/null; then sha256sum picket-* > SHA256SUMS; else shasum -a 256 picket-* > SHA256SUMS; fi
	cat $(DIST)/SHA256SUMS

# The container image, tagged with the version (never latest): IMAGE:VERSION.
IMAGE ?= picket
image:
	docker build -f examples/deploy/Dockerfile --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE):$(VERSION) .

# Figures, not pass/fail: Go benchmarks (bench/out/gobench.txt), the scheduler at 10,000
# targets for SCALE_DURATION, the whole daemon at DAEMON_SIZES targets for DAEMON_DURATION
# each (bench/out/daemon-scale.md: RSS, cores, deviation p99, first-interval coverage),
# time to page over TTP_TRIALS trials, then one summary table (bench/out/summary.json).
# bench-daemon runs only the daemon sizes (PROFILE=1 adds heap and CPU profiles);
# bench-scale runs the scheduler at 1,000, 10,000 and 50,000 targets; soak runs the
# daemon for SOAK_DURATION and checks goroutines and heap stay flat.
SCALE_DURATION  ?= 60s
DAEMON_DURATION ?= 60s
DAEMON_SIZES    ?= 1000 10000 50000 100000
TTP_TRIALS      ?= 20
SOAK_DURATION   ?= 10m
SOAK_TIMEOUT    ?= 30m
bench:
	mkdir -p bench/out
	bash -o pipefail -c '$(GO) test -run "^$$" -bench . -benchmem -benchtime 2s ./... | tee bench/out/gobench.txt'
	bench/run-scale.sh $(SCALE_DURATION) 10000
	status=0; \
	bench/run-scale.sh --daemon $(DAEMON_DURATION) $(DAEMON_SIZES) || status=$$?; \
	$(GO) test -count=1 -timeout 30m ./bench/timetopage -run 'TestTimeToPage$$' \
	  -timetopage.trials=$(TTP_TRIALS) -timetopage.global=3 -timetopage.out=bench/out/timetopage.json || status=$$?; \
	$(GO) run ./bench/cmd/summary -dir bench/out -json bench/out/summary.json || status=$$?; \
	exit $$status

soak:
	mkdir -p bench/out
	status=0; \
	$(GO) test -count=1 -timeout $(SOAK_TIMEOUT) ./bench/timetopage -run 'TestSoak$$' \
	  -soak.duration=$(SOAK_DURATION) -soak.out=bench/out/soak.json || status=$$?; \
	$(GO) run ./bench/cmd/summary -dir bench/out -json bench/out/summary.json || status=$$?; \
	exit $$status

bench-scale:
	bench/run-scale.sh $(SCALE_DURATION) 1000 10000 50000

bench-daemon:
	bench/run-scale.sh --daemon $(DAEMON_DURATION) $(DAEMON_SIZES)

# Pass/fail: delivery under receiver faults and crashes, hostile targets, a flaky
# network, and every fuzz target for FUZZTIME (failing inputs are kept in testdata/fuzz
# as regression seeds). FUZZTIME is a count of inputs, not a duration: on Go 1.26 a
# duration can end in a spurious "context deadline exceeded" failure when the deadline
# falls while a worker is busy (golang/go#75804, fixed in Go 1.27); a count has no
# deadline, so a loaded machine only runs it slower. 20,000 inputs take 2-45 s a target.
FUZZTIME ?= 20000x
FUZZ_TARGETS := FuzzParse:./config FuzzParse:./probe/tmpl FuzzCompile:./probe/expect \
	FuzzEvaluate:./probe/expect FuzzSilenceRequest:./alert/statuspage FuzzParseEvent:./alert/notify/pdtest \
	FuzzBuildMessage:./alert/notify/slack FuzzTCPExchangeLines:./probe FuzzParseRate:./config \
	FuzzDecodeState:./alert/cluster FuzzDecodeBye:./alert/cluster FuzzStoredPage:./alert/cluster \
	FuzzRetryAfter:./alert/notify FuzzOutboxLoad:./alert/notify FuzzEngineRestore:./alert \
	FuzzHistory:./internal/store FuzzParseShard:./config FuzzGossipKey:./config \
	FuzzStatusQuery:./alert/statuspage FuzzExcerpt:./internal/scrub \
	FuzzUpdateRequest:./alert/statuspage
# The outage simulator over SIM_SEEDS single-vantage and SIM_FLEET_SEEDS fleet walks
# (make test runs 300 and 20).
SIM_SEEDS       ?= 3000
SIM_FLEET_SEEDS ?= 200
resilience:
	PICKET_SIM_SEEDS=$(SIM_SEEDS) PICKET_SIM_FLEET_SEEDS=$(SIM_FLEET_SEEDS) $(GO) test -count=1 -timeout 30m -run 'TestRandomWalks|TestFleetWalks' ./alert/sim/
	PICKET_RESILIENCE=1 $(GO) test -race -count=1 -timeout 10m ./bench/resilience/...
	@set -e; for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
	done

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

clean:
	rm -rf bin dist picket-state examples/picket-state
