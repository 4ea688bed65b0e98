"""The cluster tests (several real mqd processes) use the fixtures and MQTT
helpers of test/integration: its conftest.py is loaded here under another
module name and its names re-exported, so pytest finds the same fixtures
(start_broker, clients) and hooks, and `from conftest import free_port`
works as it does there."""

import importlib.util
import os
import sys

_INTEGRATION = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "integration")
sys.path.insert(0, _INTEGRATION)  # mqtt5_raw, mqtt_raw, clients

_spec = importlib.util.spec_from_file_location(
    "integration_conftest", os.path.join(_INTEGRATION, "conftest.py"))
_mod = importlib.util.module_from_spec(_spec)
sys.modules["integration_conftest"] = _mod
_spec.loader.exec_module(_mod)
globals().update({k: v for k, v in vars(_mod).items()
                  if not k.startswith("__")})
