"""The gateway's exception hierarchy; pymodbus and paho errors are converted where they enter."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises."""


class BusError(GatewayError):
    """A Modbus request did not complete."""


class BusDisconnected(BusError):
    """The bus (TCP connection or serial port) is not connected and could not be opened."""


class DeviceTimeout(BusError):
    """The device did not answer within the bus timeout."""


class BadAnswer(BusError):
    """The device answered, but not with a valid answer to the request (a byte count that does not
    match it, data shorter than its byte count, another function code, a frame that is not Modbus)."""


class DeviceException(BusError):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


class BreakerOpen(GatewayError):
    """The device's circuit breaker is open: it failed repeatedly and is not being asked now."""
