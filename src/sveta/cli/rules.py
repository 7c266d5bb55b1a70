"""`sveta rules add|list|remove`: merchandising rules that pin, boost, bury or hide products in results."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from sveta.catalog.rules import ListedRule, RuleSpec, add_rule, list_rules, remove_rule
from sveta.cli._common import catalog, console, print_json
from sveta.errors import InputError

app = typer.Typer(help="Merchandising rules: pin, boost, bury or hide products in results.", no_args_is_help=True)


@app.command("add")
def add(
    action: str = typer.Argument(..., help="pin, boost, bury or hide."),
    target: str = typer.Argument(..., help="A product (catalog id, source id or handle), a brand or a category."),
    product: bool = typer.Option(False, "--product", help="TARGET is a product (the default)."),
    brand: bool = typer.Option(False, "--brand", help="TARGET is a brand: every product of it."),
    category: bool = typer.Option(False, "--category", help="TARGET is a category: every product in it."),
    query: str | None = typer.Option(None, "--query", help='Only for these words, e.g. "red dress" (any case).'),
    in_category: str | None = typer.Option(
        None, "--in-category", help="Only in this category: requests for it and (but for a pin) its results."
    ),
    everywhere: bool = typer.Option(False, "--everywhere", help="In every result (the default)."),
    position: int | None = typer.Option(None, "--position", help="pin: the place, 1 the top (default 1)."),
    weight: float | None = typer.Option(None, "--weight", help="boost / bury: places to move (default 5)."),
    starts: str | None = typer.Option(None, "--from", help="Start: YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC (default now)."),
    ends: str | None = typer.Option(None, "--until", help="End: YYYY-MM-DD (through that day) or a time, UTC."),
    note: str | None = typer.Option(None, "--note", help="Why the rule is there (shown by list)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: the rule, as list shows it."),
) -> None:
    """Add a rule for search, similar, complete and the widget; a later rule wins over one it contradicts."""
    target_kind = _one("what TARGET is", {"product": product, "brand": brand, "category": category}, "product")
    scope_kind = _one(
        "where the rule applies",
        {"query": query is not None, "category": in_category is not None, "everywhere": everywhere},
        "everywhere",
    )
    scope = query if scope_kind == "query" else in_category
    spec = RuleSpec(action, target, target_kind, scope_kind, scope, position, weight, starts, ends, note)
    rule = add_rule(catalog(), spec)
    listed = next(r for r in list_rules(catalog(), expired=True) if r.rule.id == rule.id)
    console.print(f"added rule {rule.id} ({listed.state}): {escape(listed.says)}")
    if as_json:
        print_json(listed.as_dict())


@app.command("list")
def list_(
    show_all: bool = typer.Option(False, "--all", help="Expired rules too."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: {rules: [...]}."),
) -> None:
    """The active and scheduled rules, oldest first, and which rule wins where two contradict."""
    rules = list_rules(catalog(), expired=show_all)
    _table(rules)
    if as_json:
        print_json({"rules": [r.as_dict() for r in rules]})


@app.command("remove")
def remove(
    rule_id: int = typer.Argument(..., help="The rule's id (sveta rules list)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: the rule removed."),
) -> None:
    """Remove a rule: results are as before it from the next request on."""
    rule = remove_rule(catalog(), rule_id)
    console.print(
        f"removed rule {rule.id}: {rule.action} {rule.target_kind} {escape(rule.target)} ({escape(rule.where)})"
    )
    if as_json:
        print_json(rule.as_dict())


def _one(what: str, flags: dict[str, bool], default: str) -> str:
    given = [name for name, on in flags.items() if on]
    if len(given) > 1:
        raise InputError(f"more than one of {what}: {', '.join(given)}", "give one of them")
    return given[0] if given else default


def _table(rules: list[ListedRule]) -> None:
    if not rules:
        console.print("no rules (add one: sveta rules add pin PRODUCT --query 'red dress')")
        return
    table = Table("id", "state", "rule", "from", "until", "note", title=f"{len(rules)} rules")
    for listed in rules:
        r = listed.rule
        dates = [f"{d:%Y-%m-%d %H:%M}" if d else "" for d in (r.starts_at, r.ends_at)]
        table.add_row(str(r.id), listed.state, escape(listed.says), *dates, escape(r.note or ""))
    console.print(table)
