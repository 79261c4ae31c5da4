"""Where the plugin's ``properties/`` folder lies.

In a source checkout it is the top-level ``properties/`` folder beside the package;
in an installed package ``setup.py`` ships it as ``recbole_anchor/properties``.
"""
import os

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def properties_dir():
    """Return the absolute path of the plugin's properties folder."""
    for candidate in (
        os.path.join(_PACKAGE_DIR, "properties"),
        os.path.join(os.path.dirname(_PACKAGE_DIR), "properties"),
    ):
        if os.path.isdir(os.path.join(candidate, "model")):
            return candidate
    raise FileNotFoundError(
        f"recbole_anchor's properties folder is missing next to {_PACKAGE_DIR}; "
        "reinstall the package with `pip install .`"
    )


def property_file(kind, name, suffix=".yaml"):
    """Path of ``properties/<kind>/<name><suffix>``, or None when there is none."""
    path = os.path.join(properties_dir(), kind, name + suffix)
    return path if os.path.isfile(path) else None
