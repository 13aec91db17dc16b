"""Support reply assistant: retrieval-grounded, checked reply drafts for customer support.

Imports here stay light so `assistant --help` starts fast; heavy modules load on first use.
"""

__version__ = "0.1.0"
