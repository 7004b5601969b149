"""The access log masks the reporter's key in the key link (portal.accesslog): the configuration
``bcc portal serve`` gives uvicorn puts the filter on the access handler, and a record through it and
uvicorn's access formatter shows no key."""

from __future__ import annotations

import logging
from importlib import import_module

from portal.accesslog import log_config


def test_reporter_keys_never_reach_the_access_log() -> None:
    config = log_config()
    names = config["handlers"]["access"]["filters"]
    factories = [config["filters"][n]["()"] for n in names]
    filters = [getattr(import_module(f.rpartition(".")[0]), f.rpartition(".")[2])() for f in factories]
    formatter_config = dict(config["formatters"]["access"])
    formatter_cls = formatter_config.pop("()")
    module, _, name = formatter_cls.rpartition(".")
    formatter = getattr(import_module(module), name)(
        **{k: v for k, v in formatter_config.items() if k == "fmt"}
    )
    key = "Zb1iApyvLynYsDaJucPx4qvRaQkEvQgZ"
    lines = []
    for path in (f"/laporan/BJ-2345-6789-ABCD/kunci/{key}", "/laporan/BJ-2345-6789-ABCD"):
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
            ("10.0.0.1", "GET", path, "1.1", 303), None,
        )  # fmt: skip
        assert all(f.filter(record) for f in filters)
        lines.append(formatter.format(record))
    assert key not in lines[0] and "/kunci/*** HTTP/1.1" in lines[0]
    assert "/laporan/BJ-2345-6789-ABCD HTTP/1.1" in lines[1]
