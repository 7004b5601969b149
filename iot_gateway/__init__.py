"""BCC's MQTT<->Modbus gateway and (in ``iot_gateway.recorder``) the telemetry recorder."""

__version__ = "0.1.0"
