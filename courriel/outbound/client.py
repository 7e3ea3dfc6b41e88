"""Handing a message to another server over SMTP (smtplib, in a worker thread).

Each recipient gets its own result: sent, a temporary failure (try again later) or a
permanent one (bounce), from the server's reply or the connection problem.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass

from courriel.config import get_config
from courriel.outbound.transport import Hop


@dataclass(frozen=True)
class Result:
    status: str  # sent | deferred | failed
    reply: str  # the remote reply or our diagnosis


def _client_context(verify: bool) -> ssl.SSLContext:
    cafile = get_config().queue.relay_ca_file or None
    context = ssl.create_default_context(cafile=cafile if verify else None)
    if not verify:
        # Opportunistic TLS to MX hosts, as Postfix does by default: encrypt when
        # offered, without refusing servers whose certificate we cannot check.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


def send(
    hop: Hop, sender: str, recipients: list[str], message: bytes, timeout: float = 60.0
) -> dict[str, Result]:
    config = get_config()
    helo = config.queue.helo_name or config.hostname
    results: dict[str, Result] = {}
    try:
        if hop.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                hop.host,
                hop.port,
                local_hostname=helo,
                timeout=timeout,
                context=_client_context(verify=True),
            )
        else:
            client = smtplib.SMTP(hop.host, hop.port, local_hostname=helo, timeout=timeout)
        with client:
            client.ehlo()
            if hop.security in {"starttls", "opportunistic"} and client.has_extn("starttls"):
                client.starttls(context=_client_context(verify=hop.security == "starttls"))
                client.ehlo()
            elif hop.security == "starttls":
                return {
                    r: Result("deferred", f"{hop.host} does not offer STARTTLS") for r in recipients
                }
            if hop.user:
                client.login(hop.user, hop.password)
            options = []
            if client.has_extn("8bitmime") and any(b > 127 for b in message[:65536]):
                options.append("BODY=8BITMIME")
            if client.has_extn("size"):
                options.append(f"SIZE={len(message)}")
            if not (sender + "".join(recipients)).isascii() and client.has_extn("smtputf8"):
                options.append("SMTPUTF8")
            code, text = client.mail(sender, options)
            if code >= 400:
                status = "failed" if code >= 500 else "deferred"
                return {r: Result(status, _reply(code, text)) for r in recipients}
            accepted = []
            for recipient in recipients:
                code, text = client.rcpt(recipient)
                if code < 400:
                    accepted.append(recipient)
                else:
                    results[recipient] = Result(
                        "failed" if code >= 500 else "deferred", _reply(code, text)
                    )
            if not accepted:
                client.rset()
                return results
            code, text = client.data(message)
            status = "sent" if code < 400 else ("failed" if code >= 500 else "deferred")
            for recipient in accepted:
                results[recipient] = Result(status, _reply(code, text))
    except smtplib.SMTPAuthenticationError as error:
        return {
            r: Result(
                "deferred",
                f"authentication at {hop.host} failed: {_reply(error.smtp_code, error.smtp_error)}",
            )
            for r in recipients
        }
    except smtplib.SMTPResponseException as error:
        status = "failed" if error.smtp_code >= 500 else "deferred"
        return {
            r: results.get(r) or Result(status, _reply(error.smtp_code, error.smtp_error))
            for r in recipients
        }
    except (TimeoutError, OSError, smtplib.SMTPException, ssl.SSLError) as error:
        return {
            r: results.get(r) or Result("deferred", f"{hop.host}:{hop.port}: {error}")
            for r in recipients
        }
    return results
