"""`hookstream verify-signature`: check a delivery's body against its X-Hub-Signature with
the ingest's own verification."""

from __future__ import annotations

from pathlib import Path

import click

from hookstream.core.settings import load_settings
from hookstream.ingest.errors import SignatureInvalid, SignatureMissing
from hookstream.ingest.signature import verify_signature


@click.command("verify-signature")
@click.argument("body_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--signature", required=True, help="The X-Hub-Signature value: sha1=<hex>.")
@click.option(
    "--secret",
    help="The client secret [default: INTERCOM_CLIENT_SECRET / INTERCOM_CLIENT_SECRETS].",
)
def verify_signature_command(body_file: Path, signature: str, secret: str | None) -> None:
    """Check that BODY_FILE (the raw bytes of a delivery) matches SIGNATURE under the
    client secret. Exits 0 when it does, 1 when it does not."""
    named = [(None, secret.encode())] if secret else load_settings().ingest.signing_secrets
    if not named:
        raise click.UsageError("give --secret or set INTERCOM_CLIENT_SECRET")
    try:
        matched = verify_signature(body_file.read_bytes(), signature, [s for _a, s in named])
    except (SignatureMissing, SignatureInvalid) as exc:
        click.echo(f"invalid: {exc}")
        raise SystemExit(1) from exc
    app = named[matched][0]
    click.echo("valid" if app is None else f"valid (the secret of app {app})")
