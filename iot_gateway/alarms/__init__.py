"""Alarms (``bcc alarms``): rules as data checked against the site, a pure evaluator with the ISA-18.2
lifecycle, and the MQTT service that publishes each alarm's state (docs/alarms.md)."""
