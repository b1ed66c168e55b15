"""A scripted browser for `agentnet login --browser`: `$BROWSER` runs a tiny script that calls
`sign_in(url, login, password)`.

It opens the sign-in link (the agentnet server's `/auth/authorize`), follows redirects, signs in
and consents on the IdP's interaction pages (or fills the server's own local-account form), and
finally delivers the redirect to the CLI's loopback listener, whose address is the link's
`redirect_uri`, as a browser would.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urljoin, urlparse

import requests

from .idp_tokens import _forms


def sign_in(url: str, login: str, password: str) -> None:
    loopback = parse_qs(urlparse(url).query)["redirect_uri"][0]
    s = requests.Session()
    s.trust_env = False
    page = s.get(url, timeout=10, allow_redirects=False)
    for _ in range(20):
        if page.is_redirect:
            target = urljoin(page.url, page.headers["location"])
            page = s.get(target, timeout=10, allow_redirects=False)
            if target.startswith(loopback):
                return
            continue
        forms = _forms(page.text)
        idp_forms = [f for f in forms if f["fields"].get("prompt") in ("login", "consent")]
        local = [f for f in forms if "flow" in f["fields"]]
        if idp_forms:
            fields = dict(idp_forms[0]["fields"])
            if fields["prompt"] == "login":
                fields.update(login=login, password=password)
            action = idp_forms[0]["action"]
        elif local:
            fields = dict(local[0]["fields"], login=login, password=password)
            action = local[0]["action"]
        else:
            raise SystemExit(f"no form at {page.url}: {page.status_code}\n{page.text[:500]}")
        page = s.post(urljoin(page.url, action), data=fields, timeout=10, allow_redirects=False)
    raise SystemExit("the sign-in never came back to the CLI")
