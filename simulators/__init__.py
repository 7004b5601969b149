"""Modbus device simulators built from a site file: runnable programs and test fixtures at once."""

from simulators.device import DeviceSim, Fault, WriteRecord
from simulators.site import SimulatorError, SiteSimulator, start_site

__all__ = ["DeviceSim", "Fault", "SimulatorError", "SiteSimulator", "WriteRecord", "start_site"]
