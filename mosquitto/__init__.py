"""The BCC broker: Mosquitto's production config and ACL (package data) and the tooling that runs them.

Modules: ``accounts`` (roles, secrets, password file), ``config`` (runtime mosquitto.conf, TLS),
``process`` (the Mosquitto subprocess), ``embedded`` (the amqtt fallback for the demo), ``cli``
(``bcc broker``). The names below are the ones tests, benchmarks and the demo use.
"""

from mosquitto.accounts import ROLES, generate_demo_secrets, read_role_secrets, write_password_file
from mosquitto.config import DEFAULT_ACL, PRODUCTION_CONF, TlsFiles, render_config
from mosquitto.embedded import EmbeddedBroker
from mosquitto.errors import BrokerError, BrokerStartError, MissingSecretsError
from mosquitto.process import MosquittoProcess, find_mosquitto, mqtt_login

__all__ = [
    "DEFAULT_ACL",
    "PRODUCTION_CONF",
    "ROLES",
    "BrokerError",
    "BrokerStartError",
    "EmbeddedBroker",
    "MissingSecretsError",
    "MosquittoProcess",
    "TlsFiles",
    "find_mosquitto",
    "generate_demo_secrets",
    "mqtt_login",
    "read_role_secrets",
    "render_config",
    "write_password_file",
]
