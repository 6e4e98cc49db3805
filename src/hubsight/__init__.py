"""hubsight: self-hosted incident detection and response for Microsoft Azure."""

__version__ = "0.1.0"
