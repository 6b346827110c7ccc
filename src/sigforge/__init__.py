"""sigforge: an offline appliance that turns DSP algorithms into verified target code."""

__version__ = "0.1.0"
