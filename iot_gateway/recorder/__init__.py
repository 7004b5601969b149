"""The recorder: MQTT state, availability, gateway health and report events into InfluxDB, never lost.

Pipeline (docs/influxdb.md): MQTT (QoS 1, persistent session, acknowledged only once spooled) ->
line protocol with source timestamps -> SQLite WAL spool (bounded, drop-oldest) -> batched
``POST /write`` over the InfluxDB v1 HTTP API (413 split, 5xx/timeout backoff, 400 dead-letter).
"""
