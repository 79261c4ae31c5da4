"""How a run is written on the command line, for every entry point and workflow.

- Model specs and variants, ``Name[key=value;key=value]``:
  ``--model="AnchorMultVAE,AnchorMultVAE[anchor_weight=0],EASE"`` compares AnchorMultVAE
  with the same model without the anchor term (exactly Mult-VAE) and EASE;
  ``AnchorMultVAE[anchor_terms=['pull','variance']]`` is an ablation. Values are read as
  Python literals, else kept as strings. A variant's keys are fixed: tuning leaves them
  out of the search space.
- Config overrides, ``--key=value`` (or ``--key value``), as RecBole reads them.
"""
import ast

from recbole_anchor.errors import InvalidConfigError, RecBoleAnchorError


def split_models(text):
    """Split a comma-separated model list at the commas outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[("
        depth -= char in "])"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [part for part in parts if part]


def parse_variant(spec):
    """``"Name[k=v;k2=v2]"`` -> ``("Name", {"k": v, "k2": v2})``; a plain name has no
    overrides."""
    name, bracket, rest = spec.partition("[")
    if not bracket:
        return spec.strip(), {}
    if not rest.endswith("]"):
        raise InvalidConfigError(
            f"cannot read model variant '{spec}'; write Name[key=value;key=value]"
        )
    overrides = {}
    for item in filter(None, (part.strip() for part in rest[:-1].split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidConfigError(
                f"cannot read '{item}' in model variant '{spec}'; write key=value"
            )
        try:
            overrides[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            overrides[key.strip()] = value.strip()
    return name.strip(), overrides


def split_overrides(extra):
    """Turn unparsed ``--key=value`` / ``--key value`` arguments into ``--key=value``."""
    overrides, index = [], 0
    while index < len(extra):
        arg = extra[index]
        if not arg.startswith("--") or len(arg) < 3:
            raise RecBoleAnchorError(
                f"cannot read argument '{arg}'; write config overrides as --key=value"
            )
        if "=" not in arg:
            if index + 1 >= len(extra) or extra[index + 1].startswith("--"):
                raise RecBoleAnchorError(f"argument '{arg}' has no value; write {arg}=VALUE")
            arg = f"{arg}={extra[index + 1]}"
            index += 1
        overrides.append(arg)
        index += 1
    return overrides


def cmd_values(cmd_args):
    """``{key: value text}`` of ``--key=value`` command-line overrides."""
    values = {}
    for arg in cmd_args or []:
        key, _, value = arg[2:].partition("=")
        values[key] = value
    return values


def drop_overrides(cmd_args, keys):
    """``--key=value`` overrides less those of ``keys``: a variant's own values must win
    over the command line's, which RecBole's Config would otherwise prefer."""
    keys = set(keys)
    return [arg for arg in cmd_args or [] if arg[2:].partition("=")[0] not in keys]
