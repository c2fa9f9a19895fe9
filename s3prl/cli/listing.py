"""``s3prl list`` and ``s3prl info NAME``: the upstream registry, what can be built, and each entry's card."""

from __future__ import annotations

import argparse
import json
import textwrap

STATUSES = ("implemented", "hub-only", "unavailable", "not-implemented")

LENGTH_RULE = (
    "frames: S3PRLUpstream gives ceil(samples / stride) frames per utterance (the model's own frames, the last "
    "one repeated where the model gives fewer; inputs under 800 samples are padded to 800), while the legacy "
    "s3prl.hub interface returns the frames the model itself computes, e.g. for a conv front-end with a "
    "400-sample receptive field and stride 320, floor((samples - 400) / 320) + 1, usually one fewer. The "
    "original toolkit's two interfaces differ the same way.")


def add_parsers(sub, common) -> None:
    p = sub.add_parser(
        "list", parents=[common], help="list upstream names and whether they can be built",
        description="List the upstream names of the registry with their family, status and checkpoint source. "
                    "Status: implemented (builds everywhere), hub-only (only through s3prl.hub, e.g. MOS "
                    "predictors), unavailable (the reason is shown), not-implemented.",
        epilog="examples:\n  s3prl list --family hubert\n  s3prl list --implemented --registered\n"
               "  s3prl list --status unavailable",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", help="only names of this family (e.g. wav2vec2, hubert, baseline)")
    p.add_argument("--registered", action="store_true",
                   help="only names that need no checkpoint from you (a registered download or a built-in front-end)")
    p.add_argument("--implemented", action="store_true", help="only names that build through S3PRLUpstream")
    p.add_argument("--status", choices=STATUSES, help="only names with this status")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    p.set_defaults(run=cmd_list)

    p = sub.add_parser(
        "info", parents=[common], help="show one upstream's entry, options and model card",
        description="Show an upstream's family and status, checkpoint URLs with their sha256 (and whether the "
                    "digest is published or only recorded on first download), its extra_conf options with "
                    "their defaults and allowed values, the frame-count rule and the model card.",
        epilog="example:\n  s3prl info wavlm_base_plus", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="a registry name (s3prl list)")
    p.set_defaults(run=cmd_info)


def availability(family: str) -> tuple[str, str]:
    """``(status, reason)`` of a family: one of ``STATUSES`` and, unless implemented, why."""
    from ..upstream import FAMILIES, UNAVAILABLE

    if family not in FAMILIES:
        return "not-implemented", f"family {family!r} is not implemented in this version"
    if family in UNAVAILABLE:
        try:
            UNAVAILABLE[family](None)
        except Exception as err:  # noqa: BLE001 - the builder's refusal is the reason
            return "unavailable", str(err)
    if family == "mos_prediction":
        return "hub-only", ("predicts MOS scores, has no hidden states: use s3prl.hub.NAME()(wavs)['scores'] "
                            "(S3PRLUpstream refuses it, as the original fails on it)")
    return "implemented", ""


def source_of(name: str, canonical: str, entry) -> str:
    if canonical != name:
        return f"alias -> {canonical}"
    if entry.user_ckpt:
        return "your checkpoint (-k)"
    return "download" if entry.urls else "built-in"


def rows(args) -> list[dict]:
    from .. import registry

    out = []
    for name in registry.available_names(args.registered):
        canonical, entry = registry.resolve(name)
        if args.family and entry.family != args.family:
            continue
        status, reason = availability(entry.family)
        if args.implemented and status != "implemented":
            continue
        if args.status and status != args.status:
            continue
        out.append({"name": name, "family": entry.family, "status": status,
                    "source": source_of(name, canonical, entry), "reason": reason})
    return out


def cmd_list(args) -> int:
    from .. import registry
    from ..upstream import FAMILIES

    if args.family and args.family not in {e.family for e in registry.REGISTRY.values()} | set(FAMILIES):
        families = sorted({e.family for e in registry.REGISTRY.values() if e.family})
        raise ValueError(f"--family {args.family!r} is not a family; families: {', '.join(families)}")
    found = rows(args)
    if args.json:
        for row in found:
            print(json.dumps(row))
        return 0
    width = min(max((len(r["name"]) for r in found), default=4), 36)
    print(f"{'name':<{width}}  {'family':<16} {'status':<15} source")
    for r in found:
        print(f"{r['name']:<{width}}  {r['family']:<16} {r['status']:<15} {r['source']}")
    reasons = {r["family"]: r["reason"] for r in found if r["status"] != "implemented"}
    for family, reason in reasons.items():
        print(f"\n{family}: {reason}")
    print(f"\n{len(found)} names")
    return 0


def digest_line(entry, i: int) -> str:
    sha = entry.sha256[i] if i < len(entry.sha256) and entry.sha256[i] else None
    source = entry.sha256_sources[i] if i < len(getattr(entry, "sha256_sources", ())) else None
    if sha and source:
        return f"{sha}\n  verified:  against the published digest ({source})"
    if sha:
        return f"{sha}\n  verified:  against this digest (recorded here from the released file; not published by its host)"
    return "unknown\n  verified:  trusted on first use (its sha256 is recorded on download; later corruption is detected)"


def cmd_info(args) -> int:
    from .. import registry
    from ..upstream import FAMILIES
    from ..upstream.options import family_options

    canonical, entry = registry.resolve(args.name)
    if canonical != args.name:
        print(f"{args.name} is an alias of {canonical}")
    status, reason = availability(entry.family)
    print(f"name:        {canonical}")
    print(f"family:      {entry.family}")
    print(f"status:      {status}" + (f" ({reason})" if reason else ""))
    if entry.user_ckpt:
        print("checkpoint:  yours (s3prl extract / downstream: -k PATH; Python: path_or_url=PATH)")
    for i, url in enumerate(entry.urls):
        print(f"checkpoint:  {url}\n  sha256:    {digest_line(entry, i)}")
    for url in entry.original_urls:
        print(f"original:    {url}")
    if entry.family in FAMILIES:
        print("options (extra_conf; Python: extra_conf={...}, CLI: --extra-conf JSON):")
        options = family_options(entry.family)
        for option, default, allowed in options:
            value = entry.extra_conf.get(option, default)
            origin = "this entry" if option in entry.extra_conf else "default"
            print(f"  {option} = {json.dumps(value, default=str)} ({origin})\n      {allowed}")
        if not options:
            print("  (none)")
    print(textwrap.fill(f"length rule: {LENGTH_RULE}", width=100, subsequent_indent="    "))
    if entry.card:
        for field in ("paper", "citation", "data", "architecture"):
            print(f"{field + ':':<13}{getattr(entry.card, field)}")
    return 0
