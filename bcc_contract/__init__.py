"""The MQTT contract: everything that crosses the broker, in one place (docs/mqtt.md is its table).

``topics`` builds every topic; ``commands`` holds the command/response shapes and statuses; ``reports``
the citizen-report event and backlog vocabulary, with the categories read from ``data/categories.yaml``.
The gateway, the recorder, the portal and the dashboards import this package; it imports none of them
(only the leaf ``bcc_common``), which tests/test_layering.py checks.
"""
