"""What an unrecognised option was probably meant to be: a near spelling, or another model's option.

argparse only says ``unrecognized arguments: --lamda_A 5``. A researcher moving between models copies flags
from another model's command (``--lambda_NCE`` is CUT's, not CycleGAN's) or mistypes one; the error line says
which, so that ``--help`` is not the only way to find out.
"""

from __future__ import annotations

import argparse
import difflib
import re

import models

#: how alike a typed flag and a real one must be to be suggested (difflib's ratio)
CUTOFF = 0.8


def option_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every long option string of ``parser``."""
    return [s for action in parser._actions for s in action.option_strings if s.startswith("--")]  # no public table


def unknown_flags(message: str) -> list[str]:
    """The flags of argparse's ``unrecognized arguments: ...`` message (values and ``=value`` dropped)."""
    found = re.match(r"unrecognized arguments: (.+)", message)
    if not found:
        return []
    return [token.split("=", 1)[0] for token in found.group(1).split() if token.startswith("--")]


def models_with(flag: str) -> list[str]:
    """The registered models whose own options include ``flag`` (training options, the larger set)."""
    owners = []
    for name in models.model_names():
        scratch = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        try:
            models.find_model_class(name).modify_commandline_options(scratch, True)
        except Exception:  # a model's options may lean on the base options; then it is simply not searched
            continue
        if flag in option_flags(scratch):
            owners.append(name)
    return owners


def hint(message: str, parser: argparse.ArgumentParser) -> str:
    """``"--lamda_A: did you mean --lambda_A?"`` or ``"--lambda_NCE is an option of --model cut, srunit"`` for
    each unknown flag there is something to say about (another model's exact flag first: ``--lambda_NCE``
    is not a typo of ``--lambda_B``)."""
    known = option_flags(parser)
    hints = []
    for flag in unknown_flags(message):
        owners = models_with(flag)
        if owners:
            hints.append(f"{flag} is an option of --model {', '.join(owners)}")
            continue
        underscored = "--" + flag[2:].replace("-", "_")
        close = [underscored] if underscored in known else difflib.get_close_matches(flag, known, 1, CUTOFF)
        if close:
            hints.append(f"{flag}: did you mean {close[0]}?")
    return "; ".join(hints)
