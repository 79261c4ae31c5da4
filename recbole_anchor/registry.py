"""The one seam that resolves model and trainer names: the plugin first, then RecBole.

Plugin models live one per file in ``recbole_anchor/model/<submodule>/<name>.py`` (file
name = lower-cased class name), as in RecBole; plugin trainers, when a model needs
one, are ``<Model>Trainer`` classes in ``recbole_anchor.trainer``.
"""
import difflib
import importlib
import importlib.util
import os

import recbole
from recbole.utils import get_trainer as recbole_get_trainer

from recbole_anchor.compat import recbole_get_model
from recbole_anchor.errors import UnknownModelError
from recbole_anchor.resources import properties_dir

MODEL_SUBMODULES = ("general_recommender",)


def find_plugin_model(model_name):
    """Return the plugin model class called ``model_name``, or None."""
    if not isinstance(model_name, str) or not model_name.isidentifier():
        return None
    for submodule in MODEL_SUBMODULES:
        module_path = f"recbole_anchor.model.{submodule}.{model_name.lower()}"
        if importlib.util.find_spec(module_path) is not None:
            model_class = getattr(importlib.import_module(module_path), model_name, None)
            if model_class is not None:
                return model_class
    return None


def plugin_model_names():
    """Names of the plugin's models (one defaults file each in properties/model)."""
    folder = os.path.join(properties_dir(), "model")
    return sorted(name[: -len(".yaml")] for name in os.listdir(folder) if name.endswith(".yaml"))


def recbole_model_names():
    """Names of RecBole's models (one defaults file each in its properties/model)."""
    folder = os.path.join(os.path.dirname(recbole.__file__), "properties", "model")
    return sorted(name[: -len(".yaml")] for name in os.listdir(folder) if name.endswith(".yaml"))


def get_model(model_name):
    """Model class for ``model_name``: a plugin model, else a RecBole model.

    Raises:
        UnknownModelError: neither knows the name; the message suggests close names.
    """
    model_class = find_plugin_model(model_name)
    if model_class is not None:
        return model_class
    try:
        return recbole_get_model(model_name)
    except (ValueError, AttributeError, ImportError):
        pass
    known = plugin_model_names() + recbole_model_names()
    by_lower = {name.lower(): name for name in known}
    close = difflib.get_close_matches(str(model_name), known, n=3, cutoff=0.6)
    if str(model_name).lower() in by_lower:
        close = [by_lower[str(model_name).lower()]]
    hint = f"did you mean {', '.join(close)}?" if close else "model names are case-sensitive"
    raise UnknownModelError(
        f"unknown model '{model_name}': it is neither a recbole_anchor model "
        f"({', '.join(plugin_model_names())}) nor a RecBole model; {hint}"
    )


def get_trainer(model_type, model_name):
    """Trainer class: ``recbole_anchor.trainer.<Model>Trainer`` if the plugin has one,
    else RecBole's choice for the model type and name."""
    if importlib.util.find_spec("recbole_anchor.trainer") is not None:
        trainer = getattr(
            importlib.import_module("recbole_anchor.trainer"), model_name + "Trainer", None
        )
        if trainer is not None:
            return trainer
    return recbole_get_trainer(model_type, model_name)
