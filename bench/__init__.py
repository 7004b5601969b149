"""Benchmarks (test equipment, not part of the installed product): ``bcc bench ...`` from a checkout.

Each prints JSON with BCC's figure and the raw ceiling (plain pymodbus, plain paho, plain ``/write``, a
trivial FastAPI endpoint) measured in the same run; docs/performance.md records the results.
"""
