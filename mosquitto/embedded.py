"""The demo's fallback broker when the mosquitto binary is missing: amqtt with the same users and ACL.

amqtt 0.12.1 speaks MQTT 3.1.1 only (an MQTT 5 CONNECT is refused with reason 128) and has no shared
subscriptions, so every client of the demo connects with 3.1.1 when this broker runs. It also cannot
bind client ids to usernames (Mosquitto's ``use_username_as_clientid``): any account could take over
another's id here, one more reason it is for a loopback demo only.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from bcc_common.net import free_port
from mosquitto.accounts import account_passwords, generate_demo_secrets, render_acl
from mosquitto.config import DEFAULT_ACL

# The MQTT protocol version every client must use with this broker (devices.site.MqttSettings.protocol).
PROTOCOL = "3.1.1"


class _SnapshotItems(dict[str, Any]):
    """amqtt 0.12.1 walks its subscriptions with ``.items()`` and awaits inside the loop; a client
    subscribing meanwhile raised "dictionary changed size during iteration" and that message was
    delivered to nobody (seen on every demo start). A snapshot of the items keeps the walk valid."""

    def items(self) -> Any:
        return list(super().items())

    def __iter__(self) -> Any:  # the same for a plain ``for topic in subscriptions`` (seen with 5 clients)
        return iter(list(super().keys()))


class EmbeddedBroker:
    """amqtt broker (MQTT 3.1.1 only, ~4x slower) with the same users and ACL, for the demo fallback."""

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        credentials: Mapping[str, str] | None = None,
        acl_path: Traversable = DEFAULT_ACL,
    ) -> None:
        self.host, self.port = host, port or free_port(host)
        self.credentials: dict[str, str] = dict(credentials or generate_demo_secrets())
        self.acl_path = acl_path
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _acls(self) -> dict[str, dict[str, list[str]]]:
        """Translate the Mosquitto acl_file (user/topic lines) into amqtt's per-user topic lists.

        amqtt 0.12.1 checks a SUBSCRIBE filter against ``acl`` once (``bcc/#`` passes ``bcc/+``), with
        no per-message read check as Mosquitto has: publish rights match Mosquitto, read rights are
        looser. Good enough for a loopback demo, not for production.
        """
        kinds = {"read": ("acl",), "write": ("publish_acl",), "readwrite": ("acl", "publish_acl")}
        acls: dict[str, dict[str, list[str]]] = {"publish_acl": {}, "acl": {}}
        user = ""
        for line in render_acl(self.acl_path.read_text(encoding="utf-8")).splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "user":
                user = words[1]
            elif len(words) == 3 and words[0] == "topic" and user:
                for kind in kinds.get(words[1], ()):
                    acls[kind].setdefault(user, []).append(words[2])
        return acls

    def _write_passwd(self, workdir: Path) -> Path:
        """amqtt reads argon2 hashes (pwdlib), not Mosquitto's PBKDF2 ones."""
        from pwdlib.hashers.argon2 import Argon2Hasher

        workdir.mkdir(parents=True, exist_ok=True)
        passwd = workdir / "passwd.argon2"
        hasher = Argon2Hasher()
        passwd.write_text(
            "".join(f"{u}:{hasher.hash(p)}\n" for u, p in account_passwords(self.credentials).items())
        )
        passwd.chmod(0o600)
        return passwd

    async def start(self, workdir: Path) -> None:
        """Start listening on host:port; users and ACL as for Mosquitto."""
        from amqtt.broker import Broker

        passwd = self._write_passwd(workdir)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(passwd)},
                "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": self._acls(),
            },
        }
        with warnings.catch_warnings():
            # amqtt 0.12.1 says to use 'subscribe-acl' instead of 'acl', but its plugin Config class
            # only accepts 'acl'.
            warnings.filterwarnings(
                "ignore", message="The 'acl' option is deprecated", category=DeprecationWarning
            )
            self._broker = Broker(config)
            self._broker._subscriptions = _SnapshotItems(self._broker._subscriptions)
            await self._broker.start()

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
