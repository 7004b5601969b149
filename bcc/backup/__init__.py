"""``bcc backup`` and ``bcc restore``: the portal's database and photos, the wall's kiosk-token registry,
InfluxDB, the recorder's spool and the configuration in one directory with a checksummed manifest
(docs/operations.md, "Back up and restore")."""
