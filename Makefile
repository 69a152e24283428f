# PacketWatch — one machine, real parts. Run as root (test VMs are network namespaces).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := tshark tcpdump tcpreplay libpcap0.8 iproute2 procps systemd chromium docker-compose

.PHONY: setup system-packages broker up demo test bench clean

AZURITE_VERSION := 3.37.0
AZURITE := .tools/node_modules/.bin/azurite-blob
PLAYWRIGHT_VERSION := 1.64.1
PLAYWRIGHT := .tools/node_modules/playwright-core/package.json

setup: system-packages broker $(VENV)/.installed $(AZURITE) $(PLAYWRIGHT)

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

broker:
	@rabbitmqctl -q status >/dev/null 2>&1 || (rabbitmq-server -detached && rabbitmqctl await_startup)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

$(AZURITE):
	npm install --no-audit --no-fund --loglevel=error --prefix .tools azurite@$(AZURITE_VERSION)

$(PLAYWRIGHT):
	npm install --no-audit --no-fund --loglevel=error --prefix .tools playwright-core@$(PLAYWRIGHT_VERSION)

up: setup
	$(VENV)/bin/packetwatch up $(UP_ARGS)

demo: setup
	$(VENV)/bin/packetwatch demo

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) -m bench.capture
	$(PY) -m bench.look_back
	$(PY) -m bench.scale_set
	$(PY) -m bench.alerts

clean:
	rm -rf $(VENV) .packetwatch .tools
