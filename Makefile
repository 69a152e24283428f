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
AXE_VERSION := 4.14.1
AXE := .tools/node_modules/axe-core/axe.min.js
# The API docs pages' assets, served from the package (functions/console/vendor), never a CDN (ReDoc 2: the
# version FastAPI's docs page is written for).
SWAGGER_UI_VERSION := 5.35.0
REDOC_VERSION := 2.5.4
# The console's design system: Microsoft's Fluent UI web components (the portal's look), one self-registering module.
FLUENT_VERSION := 2.6.1
WEB_ASSETS := functions/console/vendor/.v-$(SWAGGER_UI_VERSION)-$(REDOC_VERSION)-$(FLUENT_VERSION)

setup: system-packages broker $(WEB_ASSETS) $(VENV)/.installed $(AZURITE) $(PLAYWRIGHT) $(AXE)

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The broker, with its HTTP API (the management plugin), where agents' broker users are enrolled.
broker:
	@rabbitmqctl -q status >/dev/null 2>&1 || (rabbitmq-server -detached && rabbitmqctl await_startup)
	@rabbitmq-plugins -q is_enabled rabbitmq_management >/dev/null 2>&1 || rabbitmq-plugins -q enable rabbitmq_management

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	# The checkout's lab/ (not packaged) on the venv's path, for `up --lab`, the demo and the benches.
	$(PY) -c 'import site, sys; open(site.getsitepackages()[0] + "/packetwatch-lab.pth", "w").write(sys.argv[1] + "\n")' "$(CURDIR)"
	touch $@

$(AZURITE):
	npm install --no-audit --no-fund --loglevel=error --prefix .tools azurite@$(AZURITE_VERSION)

$(PLAYWRIGHT):
	npm install --no-audit --no-fund --loglevel=error --prefix .tools playwright-core@$(PLAYWRIGHT_VERSION)

$(AXE):
	npm install --no-audit --no-fund --loglevel=error --prefix .tools axe-core@$(AXE_VERSION)

$(WEB_ASSETS):
	rm -rf functions/console/vendor .tools/web && mkdir -p functions/console/vendor .tools/web
	cd .tools/web && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) redoc@$(REDOC_VERSION) \
	  @fluentui/web-components@$(FLUENT_VERSION) >/dev/null
	tar -xzf .tools/web/swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz -C functions/console/vendor --strip-components=1 \
	  package/swagger-ui-bundle.js package/swagger-ui.css package/favicon-32x32.png
	tar -xzf .tools/web/redoc-$(REDOC_VERSION).tgz -C functions/console/vendor --strip-components=2 \
	  package/bundles/redoc.standalone.js
	tar -xzf .tools/web/fluentui-web-components-$(FLUENT_VERSION).tgz -C functions/console/vendor --strip-components=2 \
	  package/dist/web-components.min.js
	touch $@

up: setup
	$(VENV)/bin/packetwatch up $(UP_ARGS)

demo: setup
	$(VENV)/bin/packetwatch demo

test: setup
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) -m bench.capture
	$(PY) -m bench.drain
	$(PY) -m bench.look_back
	$(PY) -m bench.scale_set
	$(PY) -m bench.alerts
	$(PY) -m bench.queue_submissions
	$(PY) -m bench.statistics_pass
	$(PY) -m bench.upload
	$(PY) -m bench.registry_list
	$(PY) -m bench.token_validation
	$(PY) -m bench.control_throughput
	$(PY) -m bench.relay
	$(PY) -m bench.broker_queues

clean:
	rm -rf $(VENV) .packetwatch .tools
