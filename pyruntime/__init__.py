"""pyruntime: an OCI runtime in Python, with runc's command line and process model."""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"
