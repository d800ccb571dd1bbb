"""Controllers of the simulated cluster: each reconciles the store towards its desired state."""

from .base import Controller, ControllerLoop

__all__ = ["Controller", "ControllerLoop"]
