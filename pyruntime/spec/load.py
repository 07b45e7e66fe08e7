"""Read a bundle's config.json: parse, check against schema/, build the model, validate.

Spec -> config -> validate, as runc does, each step raising ``ConfigError``
naming the field.  The schema check uses ``schema_check`` (a small interpreter
of our own schema files) instead of ``jsonschema``, whose import alone costs
several times the budget of a whole ``create``.
"""

from __future__ import annotations

import os

from pyruntime import jsonio
from pyruntime.errors import ConfigError
from pyruntime.spec import schema_check, validate
from pyruntime.spec.model import Spec

CONFIG_NAME = "config.json"


def read_config_document(bundle: str) -> object:
    """The parsed JSON of ``bundle/config.json``, not yet checked."""
    path = os.path.join(bundle, CONFIG_NAME)
    try:
        return jsonio.load_file(path)
    except FileNotFoundError as exc:
        raise ConfigError("", f"no such file in bundle {bundle}") from exc
    except OSError as exc:
        raise ConfigError("", f"cannot read: {os.strerror(exc.errno or 0).lower()}") from exc
    except jsonio.JSONError as exc:
        raise ConfigError("", f"invalid json: {exc}") from exc


def load_spec(bundle: str) -> Spec:
    """Everything ``create`` needs to know about a bundle, or the first error in it."""
    bundle = os.path.abspath(bundle)
    if not os.path.isdir(bundle):
        raise ConfigError("", f"bundle {bundle} is not a directory")
    document = read_config_document(bundle)
    schema_check.validate_config(document)
    assert isinstance(document, dict)
    root_path = document.get("root", {}).get("path")
    if not isinstance(root_path, str) or not root_path:
        raise ConfigError("root.path", "is required")
    spec = Spec(document, bundle, os.path.normpath(os.path.join(bundle, root_path)))
    validate.check_spec(spec)
    return spec
