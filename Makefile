# AccountDB: the two commands a new machine needs are `make run` and `make test`.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
export DATABASE_URL

.PHONY: run test e2e-deps bench lint build migrate fmt

## run: the whole system in one process (embedded NATS, migrations, relay,
## projectors, agent, pvesim, HTTP API); prints where to log in.
run:
	$(GO) run ./cmd/accountdb dev

## test: the whole suite against real PostgreSQL and an embedded NATS server,
## the console's browser tests (web/e2e) included.
test: e2e-deps
	$(GO) test -race -count=1 -timeout 14m ./...

## e2e-deps: playwright-core for the browser tests, from web/e2e's lockfile
## (again only when the lockfile changes). Chromium comes from Debian's
## package (apt-get install chromium), never a browser download.
e2e-deps: web/e2e/node_modules/.package-lock.json
web/e2e/node_modules/.package-lock.json: web/e2e/package.json web/e2e/package-lock.json
	cd web/e2e && npm ci --no-audit --no-fund

## bench: throughput and latency figures (see docs/BENCHMARKS.md); not tests.
bench:
	$(GO) run ./cmd/accountdb-bench

## lint: formatting, go vet and staticcheck.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

build:
	$(GO) build -o bin/accountdb ./cmd/accountdb

## migrate: apply pending migrations to DATABASE_URL.
migrate:
	$(GO) run ./cmd/accountdb migrate
