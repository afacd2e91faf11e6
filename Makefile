# Tether: `make run` starts a broker on embedded defaults; `make test` runs every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

BUILD_PKGS := gcc libc6-dev pkg-config libx11-dev libxext-dev libxfixes-dev libxdamage-dev libxi-dev libxtst-dev libvpx-dev libyuv-dev
TEST_PKGS  := xvfb xauth x11-xkb-utils iproute2 nftables xdotool x11-utils x11-xserver-utils xterm x11-apps xclip chromium fonts-dejavu-core zbar-tools zenity weston xwayland fusefat dosfstools openbox
# The file and shell benchmarks compare with scp and ssh to a private sshd.
BENCH_PKGS := openssh-server openssh-client

# The host refuses to run as root for another user (sudo, pkexec, doas);
# under `sudo make test` every host the tests start would.
unexport SUDO_UID PKEXEC_UID DOAS_USER XDG_RUNTIME_DIR

# The tests that mark themselves parallel mostly wait (for a connection to
# be declared lost, a broker's minute): they all wait at once.
GO_TEST_FLAGS ?= -count=1 -timeout 20m -parallel 4

.PHONY: all build run test test-go test-web bench deps-build deps-test clean

all: build

# need installs missing Debian packages when run as root; otherwise it
# prints the exact command and fails.
define need
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing missing packages:" $$missing; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "Missing packages. Run: sudo apt-get update && sudo apt-get install -y" $$missing; exit 1; \
		fi; \
	fi
endef

deps-build:
	$(call need,$(BUILD_PKGS))
	@command -v go >/dev/null || { echo "Go is missing: install Go 1.26.8 or newer into /usr/local/go"; exit 1; }

deps-test: deps-build
	$(call need,$(TEST_PKGS))
	@command -v npm >/dev/null || { $(call need,nodejs npm); }
	@# Again whenever the lock file changed since the last install.
	@cd web/test && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; }

build: deps-build
	go build -o bin/broker ./broker
	go build -o bin/host ./host
	go build -o bin/viewer ./viewer

run: build
	./bin/broker -data ./data

# The Go packages, then the browser tests. Side by side they take 18 instead
# of 24 minutes, but the tests that time the screen and the console's input
# then meet two cores shared three ways, and some failed.
test: deps-test build
	go vet ./... ./testdata/xpattern ./testdata/shellrec ./testdata/hop
	go build -o bin/xpattern ./testdata/xpattern
	go build -o bin/shellrec ./testdata/shellrec
	$(MAKE) --no-print-directory test-go
	$(MAKE) --no-print-directory test-web

test-go:
	go test $(GO_TEST_FLAGS) ./...

test-web:
	cd web/test && node --test --test-concurrency=1 *.test.mjs

bench: deps-test build
	$(call need,$(BENCH_PKGS))
	go build -o bin/xpattern ./testdata/xpattern
	go run ./internal/bench -out BENCHMARKS.md

clean:
	rm -rf bin
