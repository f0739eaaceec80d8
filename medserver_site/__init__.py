"""MedServer: MedGemma on your own GPU box, as a private clinical chat for the LAN."""

__version__ = "0.1.0"
