"""Schema-valid flow data -> the model; the third step of the pipeline.

The only place raw dicts become dataclasses. It runs only on documents the schema accepted,
so shapes are known; what the schema cannot say (a clock time like ``25:00``) becomes a
diagnostic here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from . import model as m
from .durations import parse_duration
from .errors import Diagnostic, Location, Severity
from .loader import Document, PathKey

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})$")


def _prompts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _seconds(value: str | None, default: float) -> float:
    return default if value is None else parse_duration(value)


class _Builder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []
        self.catalogue_text: str | None = None

    def loc(self, path: PathKey, *, key: bool = False) -> Location:
        return self.doc.locate(path, key=key)

    def error(self, code: str, path: PathKey, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, Severity.ERROR, message, self.loc(path), hint))

    def routes(
        self, data: Mapping[str, str] | None, path: PathKey
    ) -> MappingProxyType[str, m.Route]:
        return MappingProxyType(
            {
                key: m.Route(key=key, target=target, location=self.loc((*path, key)))
                for key, target in (data or {}).items()
            }
        )

    def flow(self, extra_prompts: Mapping[str, Any]) -> m.Flow:
        data: dict[str, Any] = self.doc.data
        states = {name: self.state(name, raw) for name, raw in data["states"].items()}
        match = data.get("match") or {}
        limits = data.get("limits") or {}
        prompts = {k: self.prompt(k, v, ("prompts", k)) for k, v in extra_prompts.items()}
        prompts.update(
            {k: self.prompt(k, v, ("prompts", k)) for k, v in (data.get("prompts") or {}).items()}
        )
        return m.Flow(
            name=data["name"],
            file=self.doc.file,
            content_hash=version_hash(self.doc.text, self.catalogue_text),
            start=data["start"],
            start_location=self.loc(("start",)),
            states=MappingProxyType(states),
            description=data.get("description"),
            locale=data.get("locale", "en-US"),
            locales=tuple(data.get("locales") or ()),
            vars=self.vars(data.get("vars"), "vars"),
            inputs=self.vars(data.get("inputs"), "inputs"),
            outputs=tuple(data.get("outputs") or ()),
            prompts=MappingProxyType(prompts),
            match=m.Match(
                dialin=tuple(match.get("dialin") or ()),
                sip_uri=tuple(match.get("sip_uri") or ()),
                sip_headers=MappingProxyType(dict(match.get("sip_headers") or {})),
            ),
            limits=m.Limits(
                max_steps=limits.get("max_steps", 1000),
                max_duration=_seconds(limits.get("max_duration"), 4 * 3600.0),
            ),
            handlers=self.routes(data.get("on"), ("on",)),
            allowed_hosts=tuple(data.get("allowed_hosts") or ()),
        )

    def vars(self, data: Mapping[str, Any] | None, section: str) -> MappingProxyType[str, m.Var]:
        out = {}
        for name, decl in (data or {}).items():
            if isinstance(decl, dict):
                type_, default = decl["type"], decl.get("default")
            else:
                type_, default = _type_name(decl), decl
            out[name] = m.Var(
                name=name, type=type_, default=default, location=self.loc((section, name), key=True)
            )
        return MappingProxyType(out)

    def prompt(self, pid: str, raw: Any, path: PathKey) -> m.Prompt:
        if isinstance(raw, str):
            locales = {"": m.PromptText(text=raw)}
        else:
            locales = {
                loc: m.PromptText(text=v)
                if isinstance(v, str)
                else m.PromptText(text=v.get("text"), audio=v.get("audio"))
                for loc, v in raw.items()
            }
        return m.Prompt(
            id=pid, locales=MappingProxyType(locales), location=self.loc(path, key=True)
        )

    def state(self, name: str, raw: dict[str, Any]) -> m.State:
        kinds = [k for k in raw if k not in ("on", "description", "max_visits")]
        kind = kinds[0]
        path: PathKey = ("states", name, kind)
        action = self.action(kind, raw[kind], path)
        return m.State(
            name=name,
            kind=kind,
            action=action,
            routes=self.routes(raw.get("on"), ("states", name, "on")),
            location=self.loc(("states", name), key=True),
            max_visits=raw.get("max_visits"),
            description=raw.get("description"),
        )

    def action(self, kind: str, v: Any, path: PathKey) -> m.Action:  # noqa: C901 - a flat dispatch
        v = {} if v is None else v
        match kind:
            case "answer":
                return m.Answer(timeout=_seconds(v.get("timeout"), 30.0))
            case "play":
                v = {"prompt": v} if isinstance(v, str) else v
                return m.Play(prompts=_prompts(v["prompt"]), barge_in=v.get("barge_in", False))
            case "say":
                v = {"text": v} if isinstance(v, str) else v
                return m.Say(
                    text=v["text"],
                    voice=v.get("voice"),
                    locale=v.get("locale"),
                    barge_in=v.get("barge_in", False),
                )
            case "collect":
                t = v.get("timeouts") or {}
                return m.Collect(
                    prompts=_prompts(v["prompt"]),
                    into=v["into"],
                    min_digits=v.get("min_digits", 1),
                    max_digits=v["max_digits"],
                    terminator=v.get("terminator", "#"),
                    first_digit=_seconds(t.get("first_digit"), 5.0),
                    inter_digit=_seconds(t.get("inter_digit"), 3.0),
                    total=_seconds(t["total"], 0.0) if "total" in t else None,
                    pattern=v.get("pattern"),
                    attempts=v.get("attempts", 3),
                    no_input_prompts=_prompts(v.get("no_input_prompt")),
                    no_match_prompts=_prompts(v.get("no_match_prompt")),
                    barge_in=v.get("barge_in", True),
                )
            case "menu":
                return m.Menu(
                    prompts=_prompts(v["prompt"]),
                    options=self.routes(v["options"], (*path, "options")),
                    timeout=_seconds(v.get("timeout"), 5.0),
                    attempts=v.get("attempts", 3),
                    no_input_prompts=_prompts(v.get("no_input_prompt")),
                    no_match_prompts=_prompts(v.get("no_match_prompt")),
                    into=v.get("into"),
                )
            case "send_dtmf":
                v = {"tones": v} if isinstance(v, str) else v
                duration = v.get("digit_duration")
                return m.SendDtmf(
                    tones=v["tones"],
                    leg=v.get("leg", "dialout"),
                    method=v.get("method", "auto"),
                    digit_duration_ms=round(parse_duration(duration) * 1000) if duration else 500,
                )
            case "dial_out":
                codecs = v.get("codecs")
                return m.DialOut(
                    to=v["to"],
                    leg=v.get("leg", "dialout"),
                    display_name=v.get("display_name"),
                    caller_id=v.get("caller_id"),
                    user_id=v.get("user_id"),
                    video=v.get("video", False),
                    codecs=MappingProxyType({k: tuple(c) for k, c in codecs.items()})
                    if codecs
                    else None,
                    extension=v.get("extension"),
                    wait_before_extension=_seconds(v.get("wait_before_extension"), 0.0),
                    timeout=_seconds(v.get("timeout"), 30.0),
                )
            case "stop_dial_out":
                return m.StopDialOut(leg=v.get("leg", "dialout"))
            case "transfer":
                target_kind: Literal["room", "sip", "phone"] = (
                    "room" if "room" in v else "sip" if "sip" in v else "phone"
                )
                return m.Transfer(
                    target_kind=target_kind,
                    target=v[target_kind],
                    leg=v.get("leg", "caller"),
                    caller_id=v.get("caller_id"),
                    extension=v.get("extension"),
                    wait_before_extension=_seconds(v.get("wait_before_extension"), 0.0),
                    timeout=_seconds(v.get("timeout"), 60.0),
                )
            case "refer":
                return m.Refer(
                    to=v["to"], leg=v.get("leg", "caller"), timeout=_seconds(v.get("timeout"), 30.0)
                )
            case "wait":
                return m.Wait(
                    duration=_seconds(v["for"], 0.0) if "for" in v else None,
                    events=tuple(v.get("events") or ()),
                    timeout=_seconds(v["timeout"], 0.0) if "timeout" in v else None,
                )
            case "choose":
                cases = tuple(
                    m.Case(
                        condition=c["if"],
                        target=c["goto"],
                        location=self.loc((*path, "when", i, "goto")),
                    )
                    for i, c in enumerate(v["when"])
                )
                otherwise = m.Route(
                    key="otherwise", target=v["otherwise"], location=self.loc((*path, "otherwise"))
                )
                return m.Choose(cases=cases, otherwise=otherwise)
            case "set":
                return m.SetVars(values=MappingProxyType(dict(v)))
            case "http":
                return m.Http(
                    method=v.get("method", "GET"),
                    url=v["url"],
                    headers=MappingProxyType(dict(v.get("headers") or {})),
                    query=MappingProxyType(dict(v.get("query") or {})),
                    body=v.get("body"),
                    timeout=_seconds(v.get("timeout"), 5.0),
                    retries=v.get("retries", 0),
                    backoff=_seconds(v.get("backoff"), 0.5),
                    save=MappingProxyType(dict(v.get("save") or {})),
                )
            case "schedule":
                return m.Schedule(
                    timezone=v.get("timezone"),
                    hours=self.hours(v["hours"], (*path, "hours")),
                    holidays=frozenset(v.get("holidays") or ()),
                    override=v.get("override"),
                )
            case "call":
                return m.CallFlow(
                    flow=v["flow"],
                    inputs=MappingProxyType(dict(v.get("inputs") or {})),
                    outputs=MappingProxyType(dict(v.get("outputs") or {})),
                )
            case "return":
                return m.Return(outcome=v.get("outcome", "done"))
            case "hangup":
                return m.Hangup(reason=v.get("reason"))
            case _:
                return m.End()

    def hours(
        self, raw: Mapping[str, Any], path: PathKey
    ) -> MappingProxyType[int, tuple[tuple[int, int], ...]]:
        table: dict[int, list[tuple[int, int]]] = {}
        given_in: dict[int, str] = {}
        for spec, ranges in raw.items():
            first, _, last = spec.partition("-")
            a, b = DAYS.index(first), DAYS.index(last or first)
            days = [(a + i) % 7 for i in range(((b - a) % 7) + 1)]
            items = [ranges] if isinstance(ranges, str) else list(ranges)
            spans = []
            for i, text in enumerate(items):
                where = (*path, spec) if isinstance(ranges, str) else (*path, spec, i)
                if text.strip().lower() == "closed":
                    continue
                span = _parse_range(text)
                if span is None:
                    self.error(
                        "invalid-hours",
                        where,
                        f"{text!r} is not an opening time range",
                        "Write ranges as HH:MM-HH:MM, e.g. 09:00-17:30, or 'closed'.",
                    )
                    continue
                spans.append(span)
            twice = [day for day in days if day in table]
            if twice:
                earlier = sorted({given_in[day] for day in twice}, key=list(raw).index)
                self.error(
                    "invalid-hours",
                    (*path, spec),
                    f"{', '.join(DAYS[d] for d in twice)} {'has' if len(twice) == 1 else 'have'} "
                    f"opening hours twice: in {', '.join(repr(e) for e in earlier)} "
                    f"and in {spec!r}",
                    "Give each day its hours once: list several ranges for a day as a list.",
                )
            for day in days:
                given_in.setdefault(day, spec)
                table.setdefault(day, []).extend(spans)
        return MappingProxyType({d: tuple(sorted(s)) for d, s in table.items()})


def _parse_range(text: str) -> tuple[int, int] | None:
    found = _RANGE.match(text.strip())
    if not found:
        return None
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or end > 24 * 60 or end <= start:
        return None
    return start, end


def _type_name(value: Any) -> str:
    for name, kind in (
        ("boolean", bool),
        ("integer", int),
        ("number", float),
        ("string", str),
        ("list", list),
        ("map", dict),
    ):
        if isinstance(value, kind):
            return name
    return "string"


def version_hash(text: str, catalogue: str | None = None) -> str:
    """A flow version's content hash: the SHA-256 of the flow file's text and, when it has a
    prompt catalogue, of the catalogue's text too (its prompts are the flow's own, so editing
    them makes a new version). Sub-flows are versions of their own."""
    digest = hashlib.sha256(text.encode("utf-8"))
    if catalogue is not None:
        digest.update(b"\0catalogue\0")
        digest.update(catalogue.encode("utf-8"))
    return digest.hexdigest()


def build_flow(
    doc: Document,
    *,
    extra_prompts: Mapping[str, Any] | None = None,
    catalogue_text: str | None = None,
) -> tuple[m.Flow, list[Diagnostic]]:
    """Build the model from a schema-valid document, with diagnostics the schema cannot give.

    ``extra_prompts`` are the prompts of its catalogue, whose text is ``catalogue_text``
    (part of the version's content hash, see ``version_hash``).
    """
    builder = _Builder(doc)
    builder.catalogue_text = catalogue_text
    flow = builder.flow(extra_prompts or {})
    return flow, builder.diagnostics
