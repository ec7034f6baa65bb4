"""Checks on prompts: every prompt a state plays is in the catalogue, in every locale the flow
promises.

The catalogue is the flow's ``prompts`` plus the file named by ``catalogue``. A prompt written
as plain text is in the flow's ``locale``.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import model as m
from ..errors import Diagnostic
from . import CheckContext, did_you_mean, rule


def prompt_uses(state: m.State) -> Iterator[tuple[str, int, str]]:
    """(field, index, prompt id) for every prompt a state may play."""
    action = state.action
    if isinstance(action, m.Play):
        fields: list[tuple[str, tuple[str, ...]]] = [("prompt", action.prompts)]
    elif isinstance(action, (m.Collect, m.Menu)):
        fields = [
            ("prompt", action.prompts),
            ("no_input_prompt", action.no_input_prompts),
            ("no_match_prompt", action.no_match_prompts),
        ]
    else:
        return
    for name, ids in fields:
        for i, pid in enumerate(ids):
            yield name, i, pid


@rule
def unknown_prompts(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A prompt id that is not in the catalogue would leave the caller in silence."""
    catalogue = ctx.flow.prompts
    for state in ctx.flow.states.values():
        for name, i, pid in prompt_uses(state):
            if pid in catalogue:
                continue
            # A single id (or `play: id`) has no index: locate falls back to the value itself.
            loc = ctx.locate(ctx.state_path(state, name, i))
            what = f"the prompt {pid!r}" if name == "prompt" else f"{pid!r} as its {name}"
            where = "the prompts section or the catalogue file" if _catalogue(ctx) else "prompts"
            yield ctx.error(
                "unknown-prompt",
                loc,
                f"state {state.name!r} plays {what}, but no prompt has that id",
                did_you_mean(pid, catalogue) or f'Add it to {where}: {pid}: "<text to speak>".',
            )


def _catalogue(ctx: CheckContext) -> str | None:
    data = ctx.doc.data
    name = data.get("catalogue") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None


@rule
def missing_locales(ctx: CheckContext) -> Iterator[Diagnostic]:
    """With ``locales`` set, each prompt has each of them, or some callers hear another language."""
    flow = ctx.flow
    if not flow.locales:
        return
    used = {pid for s in flow.states.values() for _, _, pid in prompt_uses(s)}
    for pid, prompt in flow.prompts.items():
        inline = ("prompts", pid) in ctx.doc.keys
        if not inline and pid not in used:
            continue  # a shared catalogue may hold prompts for other flows
        have = {flow.locale if key == "" else key for key in prompt.locales}
        missing = [loc for loc in flow.locales if loc not in have]
        if not missing:
            continue
        source = "" if inline else f" (from the catalogue {_catalogue(ctx)!r})"
        if set(prompt.locales) == {""}:
            hint = (
                f"Text written directly counts as the flow's locale {flow.locale}; write the "
                f'prompt as a mapping, e.g. {{{flow.locale}: "...", {missing[0]}: "..."}}.'
            )
        else:
            hint = f'Add {missing[0]}: "<text>" (or {{audio: <file>}}) to the prompt.'
        yield ctx.warning(
            "missing-locale",
            prompt.location if inline else ctx.locate(("catalogue",)),
            f"prompt {pid!r}{source} has no {', '.join(missing)} version",
            hint,
        )
