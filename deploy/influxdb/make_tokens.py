"""Give the service and Grafana each an InfluxDB 2 token of its own scope, made once with the admin token.

Run by the stack's one-shot `influxdb-tokens` service before the service and Grafana start.
InfluxDB makes up a token's value itself (neither its API nor its CLI takes one), so each token
is handed over in a file on a volume that only its user mounts: the service's may read and
write the bucket (it writes readings and reads a device's history back for the API), Grafana's
may only read it. An authorisation made earlier (found by its description) is reused, so a
restart hands over the same tokens; delete one in InfluxDB and the next start makes a new one.

Environment: INFLUX_URL, INFLUX_ADMIN_TOKEN, INFLUX_ORG, INFLUX_BUCKET, and for each token its
file and the user id that owns it: SERVICE_TOKEN_FILE, SERVICE_UID, GRAFANA_TOKEN_FILE, GRAFANA_UID.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class Influx:
    """The few calls of InfluxDB 2's HTTP API this needs, with the admin token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **query: str) -> Any:
        """One request; the answer's JSON."""
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Token {self.token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait until InfluxDB answers /health."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.call("GET", "/health")
                return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)


def ensure_token(influx: Influx, org_id: str, bucket_id: str, description: str, actions: list[str]) -> str:
    """The token of the authorisation with this description; made (these actions on the bucket) if missing."""
    found = influx.call("GET", "/api/v2/authorizations", orgID=org_id)["authorizations"]
    for auth in found:
        if auth["description"] == description and auth["status"] == "active":
            return str(auth["token"])
    resource = {"type": "buckets", "id": bucket_id, "orgID": org_id}
    body = {
        "orgID": org_id,
        "description": description,
        "permissions": [{"action": action, "resource": resource} for action in actions],
    }
    print(f"influxdb-tokens: making the token '{description}'")
    return str(influx.call("POST", "/api/v2/authorizations", body)["token"])


def hand_over(token: str, path: Path, uid: int) -> None:
    """Write the token for one user only (no newline: Grafana reads the file's whole content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
    with os.fdopen(fd, "w") as file:
        file.write(token)
    os.chown(partial, uid, -1)
    os.replace(partial, path)


def main() -> int:
    """Make or find both tokens and hand them over."""
    env = os.environ
    influx = Influx(env["INFLUX_URL"], env["INFLUX_ADMIN_TOKEN"])
    influx.wait_ready()
    org, bucket = env["INFLUX_ORG"], env["INFLUX_BUCKET"]
    orgs = influx.call("GET", "/api/v2/orgs", org=org)["orgs"]
    if not orgs:
        print(f"influxdb-tokens: no organisation {org!r}", file=sys.stderr)
        return 1
    org_id = str(orgs[0]["id"])
    buckets = influx.call("GET", "/api/v2/buckets", orgID=org_id, name=bucket)["buckets"]
    if not buckets:
        print(f"influxdb-tokens: no bucket {bucket!r} in {org!r}", file=sys.stderr)
        return 1
    bucket_id = str(buckets[0]["id"])
    service = ensure_token(
        influx, org_id, bucket_id, f"facility service: {bucket} read and write", ["read", "write"]
    )
    grafana = ensure_token(influx, org_id, bucket_id, f"grafana: {bucket} read", ["read"])
    hand_over(service, Path(env["SERVICE_TOKEN_FILE"]), int(env["SERVICE_UID"]))
    hand_over(grafana, Path(env["GRAFANA_TOKEN_FILE"]), int(env["GRAFANA_UID"]))
    print("influxdb-tokens: the service's and Grafana's tokens are in place")
    return 0


if __name__ == "__main__":
    sys.exit(main())
