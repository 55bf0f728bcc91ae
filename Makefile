# flashgate: `make run` starts everything on this machine; `make test` runs
# every test (CI runs exactly that).
GO       ?= go
BIN      := bin/flashgate
# Fuzz budgets are execution counts, about 8 s each on this box: a duration
# budget races Go 1.26's fuzz coordinator at its deadline and fails with
# "context deadline exceeded" and no crasher (go.dev/issue/75804, fixed in
# Go 1.27). FUZZTIME=10s (or 1000000x) overrides every target at once.
FUZZTIME ?=
FUZZ_VERIFY      ?= $(or $(FUZZTIME),200000x)
FUZZ_NOTIFY      ?= $(or $(FUZZTIME),40000x)
FUZZ_RETURN      ?= $(or $(FUZZTIME),40000x)
FUZZ_PATH        ?= $(or $(FUZZTIME),100000x)
FUZZ_BUY_REQUEST ?= $(or $(FUZZTIME),6000x)

export PATH := $(PATH):/usr/local/go/bin

.PHONY: all build run services test vet unit fuzz fuzz-targets bench wrk chaos clean screenshots deploy-check

all: build

build:
	$(GO) build -o $(BIN) ./cmd/flashgate

services:
	@bash scripts/services.sh

## run: the whole system in one process (embedded Kafka-protocol broker,
## local Redis and MariaDB, installed and started when missing). Its Redis
## prefix and database are named for the user, so that two people on one
## machine do not clear each other's data; FLASHGATE_REDIS_PREFIX and
## FLASHGATE_MYSQL_DSN in the environment win.
RUN_USER := $(shell id -un 2>/dev/null | tr -c 'a-zA-Z0-9_\n' _)
PREFIX   ?= fg_$(RUN_USER)
DB       ?= flashgate_$(RUN_USER)
run: services build
	FLASHGATE_REDIS_PREFIX="$${FLASHGATE_REDIS_PREFIX:-$(PREFIX)}" \
	FLASHGATE_MYSQL_DSN="$${FLASHGATE_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/$(DB)?parseTime=true}" \
	./$(BIN) dev

## test: gofmt check, go vet, every unit and integration test under the race
## detector, then short fuzz runs of the parsers that face the network.
test: services vet fuzz unit deploy-check

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

## unit and fuzz run under scripts/leftovers.sh, which fails when the tests
## leave Redis keys or databases behind.
unit:
	@bash scripts/leftovers.sh $(GO) test -race -count=1 -timeout 15m ./...

## deploy-check: the deploy files and the monitoring rules, validated by the
## tools they are written for (scripts/deploy-check.sh).
deploy-check:
	@bash scripts/deploy-check.sh

fuzz:
	@bash scripts/leftovers.sh $(MAKE) --no-print-directory fuzz-targets FUZZTIME=$(FUZZTIME)

fuzz-targets:
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZ_VERIFY) ./internal/auth
	$(GO) test -run='^$$' -fuzz='^FuzzParseNotify$$' -fuzztime=$(FUZZ_NOTIFY) ./internal/alipay
	$(GO) test -run='^$$' -fuzz='^FuzzParseReturn$$' -fuzztime=$(FUZZ_RETURN) ./internal/alipay
	$(GO) test -run='^$$' -fuzz='^FuzzPathVerify$$' -fuzztime=$(FUZZ_PATH) ./internal/edge
	$(GO) test -run='^$$' -fuzz='^FuzzBuyRequest$$' -fuzztime=$(FUZZ_BUY_REQUEST) ./gateway

## bench: a short standard load run against a dev stack, with its summary.
bench: services build
	bash scripts/bench.sh

## screenshots: the browser test's pictures of the pages, into docs/screens.
screenshots: services
	FLASHGATE_SCREENSHOTS=$(CURDIR)/docs/screens $(GO) test -count=1 -run '^TestBrowserStory$$' ./test

## wrk: issue 12's ratios and costs measured with wrk (installed when
## missing) against a bare handler and a dev stack, in the same run.
wrk: services build
	bash scripts/wrk.sh

## chaos: the full fault suite (test/chaos): separate processes, an own
## redis-server with AOF, faults injected by the suite, invariants checked
## per case. `make test` runs its short version.
chaos: services
	FLASHGATE_CHAOS=full $(GO) test -count=1 -v -timeout 30m -run TestChaos ./test/chaos

clean:
	rm -rf bin reports
