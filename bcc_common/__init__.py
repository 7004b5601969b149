"""Shared plumbing for every BCC package: a leaf that imports nothing else of ours.

Modules: ``net`` (free_port), ``secrets`` (the "VAR or VAR_FILE" reader), ``timefmt`` (UTC clock and
ISO-8601 formatting), ``sse`` (Server-Sent Events framing), ``process`` (stopping child processes and
tasks), ``ident`` (the identifier pattern shared by site files, profiles, scenes and MQTT roles), ``sdnotify``
(systemd readiness).
The layering test (tests/test_layering.py) fails if this package imports another BCC package.
"""
