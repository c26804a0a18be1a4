"""A real SMTP server for the notification tests (aiosmtpd), with TLS from a throwaway CA
(trustme).

Usage: smtp_sink.py MODE PORT DIR [USER PASSWORD]
  MODE is plain (no TLS), starttls (STARTTLS required) or tls (implicit TLS).
Writes DIR/ca.pem (the CA to trust), prints READY once it accepts connections, and for
every message received writes DIR/msg-N.json: the envelope, whether the session was
encrypted and authenticated, the raw message and its decoded parts. Stops when stdin
closes.
"""

import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main() -> None:
    mode, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    creds = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else None

    ca = trustme.CA()
    ca.cert_pem.write_to_path(os.path.join(out, "ca.pem"))
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)

    counter = {"n": 0}

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            counter["n"] += 1
            raw = envelope.original_content or envelope.content
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            parts = {}
            for part in parsed.walk():
                if not part.is_multipart():
                    parts[part.get_content_type()] = part.get_content().replace("\r\n", "\n")
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
                "auth": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
                "headers": {k: str(v) for k, v in parsed.items()},
                "parts": parts,
                "raw": raw.decode("utf-8", "replace"),
            }
            path = os.path.join(out, "msg-%d.json" % counter["n"])
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.rename(path + ".tmp", path)
            return "250 Message accepted for delivery"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            creds is not None
            and isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == creds[0]
            and auth_data.password.decode() == creds[1]
        )
        # handled=False: aiosmtpd itself answers 535 to a failed login.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    kwargs = {"hostname": "127.0.0.1", "port": port}
    if creds:
        kwargs["authenticator"] = authenticator
    if mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True, auth_require_tls=True)
    elif mode == "tls":
        # Implicit TLS: the whole session is encrypted, which aiosmtpd's STARTTLS check
        # does not see, so it must not insist on STARTTLS before AUTH.
        kwargs.update(ssl_context=context, auth_require_tls=False)
    elif mode != "plain":
        sys.exit("unknown mode " + mode)
    controller = Controller(Handler(), **kwargs)
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
