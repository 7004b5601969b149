"""Shared fixtures: real Mosquitto with the project's config, real simulators, free loopback ports."""

pytest_plugins = [
    "tests.support.broker",
    "tests.support.simulators",
    "tests.support.influx",
    "tests.support.portal",
]
