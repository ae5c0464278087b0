"""``hedge alerts ...``: check the alert channels configured in the environment (docs/alerts.md)."""

from __future__ import annotations

import os

import typer

from hedge_core.errors import InvalidInput

__all__ = ["alerts_app"]

alerts_app = typer.Typer(help="Alert channels (Telegram, Slack, e-mail, webhooks via Apprise; see docs/alerts.md).",
                         no_args_is_help=True, add_completion=False)


def _show_apprise_reasons() -> None:
    """Print Apprise's reason for a failed delivery (already scrubbed of URL pieces) on stderr."""
    import logging

    from hedge_core.runner.logs import RedactFilter

    lg = logging.getLogger("hedge_core.runner.notify")
    h = logging.StreamHandler()
    h.setFormatter(logging.Formatter("  why: %(message)s"))
    h.addFilter(RedactFilter())
    h.addFilter(lambda r: r.getMessage().startswith("apprise:"))
    lg.addHandler(h)
    lg.propagate = False


@alerts_app.command("test")
def alerts_test(message: str = typer.Option("test alert from the hedge runner: channels work",
                                            help="Text of the test message.")) -> None:
    """Send one test message to every channel of HEDGE_ALERT_URLS* and say which were reached.

    Exit code 0 when every channel was reached, 1 when one was not, 2 when nothing is configured
    or the configuration is bad. URLs are shown redacted (they hold tokens).
    """
    from hedge_core.runner.notify import Notifier
    from hedge_core.runner.notify_config import load_config

    _show_apprise_reasons()
    try:
        cfg = load_config(os.environ)
    except InvalidInput as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if cfg is None:
        typer.echo("no alert channel configured: set HEDGE_ALERT_URLS (Apprise URLs; see docs/alerts.md)", err=True)
        raise typer.Exit(2)
    n = Notifier(cfg)  # no worker: send now, in this process, to every channel whatever its level
    results = n.deliver(cfg.min_level, "[TEST] hedge alerts", message, kind="test", channels=list(cfg.channels))
    by_name = {c.name: c for c in cfg.channels}
    for name, ok in results:
        c = by_name[name]
        typer.echo(f"{'reached    ' if ok else 'NOT reached'}  {name}  (hears {c.threshold} and above)")
    reached = sum(ok for _, ok in results)
    typer.echo(f"{reached} of {len(results)} channels reached (minimum level {cfg.min_level}, "
               f"rate limit one per {cfg.rate_s:g} s per kind and hedge, burst cap {cfg.burst}/min)")
    if reached < len(results):
        raise typer.Exit(1)
