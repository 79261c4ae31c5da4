"""RecBole's Config, extended to know the plugin's models, defaults and presets.

Priority, lowest first, as in RecBole: RecBole's ``overall.yaml`` < the model's
defaults (RecBole's ``properties/model/<Model>.yaml`` or the plugin's) < dataset
presets (RecBole's, then the plugin's ``properties/dataset/<dataset>.yaml``) < config
files < ``config_dict`` < command-line ``--key=value``. The plugin's ``properties/overall.yaml``
(keys of the plugin that any model reads, e.g. ``download``) only fills keys nothing else set.
"""
import ast
import os

import recbole
import torch
import yaml
from recbole.config.configurator import Config as RecBoleConfig
from recbole.utils import EvaluatorType

from recbole_anchor import registry
from recbole_anchor.config_checks import check_user_values, check_valid_metric_is_computed
from recbole_anchor.errors import InvalidConfigError, RecBoleAnchorError
from recbole_anchor.resources import properties_dir, property_file
from recbole_anchor.trainer.stopping import stopping_rule

# Exceptions RecBole's Config raises for bad user input; reported as one line.
_CONFIG_INPUT_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    NotImplementedError,
    SyntaxError,
    RuntimeError,
    AttributeError,
    IndexError,
    yaml.YAMLError,
)


class Config(RecBoleConfig):
    """RecBole Config that resolves plugin models first and falls back to RecBole.

    Args:
        model, dataset, config_file_list, config_dict: as in RecBole's Config.
        cmd_args (list of str, optional): ``--key=value`` overrides with the highest
            priority. ``None`` reads them from ``sys.argv`` like RecBole does.
    """

    def __init__(
        self,
        model=None,
        dataset=None,
        config_file_list=None,
        config_dict=None,
        cmd_args=None,
    ):
        self._cmd_args = cmd_args
        for path in config_file_list or []:
            if not os.path.isfile(path):
                raise InvalidConfigError(
                    f"config file '{path}' does not exist; check --config_files"
                )
        try:
            super().__init__(model, dataset, config_file_list, config_dict)
        except RecBoleAnchorError:
            raise
        except _CONFIG_INPUT_ERRORS as err:
            text = err.args[0] if isinstance(err, KeyError) and err.args else err
            message = (str(text).strip().splitlines() or [type(err).__name__])[0]
            raise InvalidConfigError(f"invalid configuration: {message}") from None
        if self["eval_type"] == EvaluatorType.RANKING:
            check_valid_metric_is_computed(self.final_config_dict)
        stopping_rule(self)
        check_config = getattr(self.model_class, "check_config", None)
        if check_config is not None:
            check_config(self)

    def _init_device(self):
        super()._init_device()
        # RecBole leaves use_gpu=True beside device=cpu on a machine without CUDA.
        final = self.final_config_dict
        final["use_gpu"] = torch.device(final["device"]).type == "cuda"

    def _load_cmd_line(self):
        if self._cmd_args is None:
            return super()._load_cmd_line()
        cmd_config_dict = {}
        for arg in self._cmd_args:
            key, sep, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
            if not key or not sep:
                raise InvalidConfigError(
                    f"cannot read argument '{arg}'; write config overrides as --key=value"
                )
            cmd_config_dict[key] = value
        return self._convert_config_dict(cmd_config_dict)

    def _convert_config_dict(self, config_dict):
        """String values are read as Python literals (``"[10, 20]"``, ``"0.5"``), else
        kept as strings; RecBole evaluates them as code, which can run anything."""
        for key, value in config_dict.items():
            if not isinstance(value, str):
                continue
            try:
                parsed = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                lowered = value.lower()
                parsed = {"true": True, "false": False}.get(lowered, value)
            config_dict[key] = parsed if not isinstance(parsed, (set, complex, bytes)) else value
        return config_dict

    def _get_model_and_dataset(self, model, dataset):
        check_user_values(self.external_config_dict)
        if model is None:
            model = self.external_config_dict.get("model")
            if model is None:
                raise InvalidConfigError(
                    "no model given; pass --model=NAME or set `model` in a config file"
                )
        if isinstance(model, str):
            model_name, model_class = model, registry.get_model(model)
        else:
            model_name, model_class = model.__name__, model
        if dataset is None:
            dataset = self.external_config_dict.get("dataset")
            if dataset is None:
                raise InvalidConfigError(
                    "no dataset given; pass --dataset=NAME or set `dataset` in a config file"
                )
        return model_name, model_class, dataset

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        plugin_model_file = property_file("model", model)
        if plugin_model_file is not None:
            # Plugin model defaults sit where RecBole puts a model's yaml: below the
            # dataset presets, so RecBole's preset is applied again on top of them.
            self._update_internal_config_dict(plugin_model_file)
            recbole_preset = os.path.join(
                os.path.dirname(recbole.__file__), "properties", "dataset", dataset + ".yaml"
            )
            if os.path.isfile(recbole_preset):
                self._update_internal_config_dict(recbole_preset)
        plugin_preset = property_file("dataset", dataset)
        if plugin_preset is not None:
            loaded = self._update_internal_config_dict(plugin_preset) or {}
            self.parameters["Dataset"] = self.parameters["Dataset"] + [
                key for key in loaded if key not in self.parameters["Dataset"]
            ]
        with open(os.path.join(properties_dir(), "overall.yaml"), encoding="utf-8") as handle:
            plugin_defaults = yaml.load(handle.read(), Loader=self.yaml_loader) or {}
        for key, value in plugin_defaults.items():
            self.internal_config_dict.setdefault(key, value)

    def _set_default_parameters(self):
        data_root = self.final_config_dict.get("data_path") or "dataset/"
        super()._set_default_parameters()
        if self.dataset == "ml-100k":
            # RecBole always reads its bundled ml-100k; prefer a local copy if present.
            local = os.path.join(data_root, self.dataset)
            if os.path.isfile(os.path.join(local, self.dataset + ".inter")):
                self.final_config_dict["data_path"] = local

    @classmethod
    def from_dict(cls, final_config_dict):
        """Rebuild a Config from a final config dict (as stored in a checkpoint),
        on the device available here."""
        config = cls.__new__(cls)
        config._cmd_args = []
        config.compatibility_settings()
        config._init_parameters_category()
        config.yaml_loader = config._build_yaml_loader()
        config.file_config_dict = config.variable_config_dict = {}
        config.cmd_config_dict = config.external_config_dict = {}
        config.internal_config_dict = {}
        final = dict(final_config_dict)
        config.model = final["model"]
        config.dataset = final["dataset"]
        config.model_class = registry.get_model(config.model)
        saved_device = torch.device(final.get("device") or "cpu")
        use_cuda = saved_device.type == "cuda" and torch.cuda.is_available()
        final["device"] = torch.device("cuda" if use_cuda else "cpu")
        final["single_spec"], final["local_rank"] = True, 0
        config.final_config_dict = final
        return config
