"""InfluxDB stores: the v2 write API through influxdb-client, or the v1 `/write?db=` API; InfluxQL queries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import urllib3

from collector.stores.base import Aggregate, StoreRejected, StoreUnavailable

if TYPE_CHECKING:
    from influxdb_client.domain.write_precision import WritePrecision

# 400 is a bad point; 413 a batch too large: neither gets better by retrying the same request.
_REJECTED_STATUSES = frozenset({400, 413, 422})


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def influxql_range(
    measurement: str,
    field: str,
    start_ms: int,
    end_ms: int,
    site: str | None,
    device_id: str | None,
    every_s: int | None,
    aggregate: Aggregate,
) -> str:
    """The InfluxQL for one field over a time range, optionally aggregated into buckets."""
    where = [f"time >= {int(start_ms)}ms", f"time < {int(end_ms)}ms"]
    if site is not None:
        where.append(f"{_ident('site')} = {_literal(site)}")
    if device_id is not None:
        where.append(f"{_ident('device_id')} = {_literal(device_id)}")
    selected = _ident(field) if every_s is None else f"{aggregate}({_ident(field)})"
    query = f"SELECT {selected} FROM {_ident(measurement)} WHERE {' AND '.join(where)}"
    if every_s is not None:
        query += f" GROUP BY time({int(every_s)}s) fill(none)"
    return query


def _check(status: int, body: bytes | str) -> None:
    if status < 300:
        return
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    reason = f"HTTP {status}: {text.strip()[:500]}"
    if status in _REJECTED_STATUSES:
        raise StoreRejected(reason)
    raise StoreUnavailable(reason)


class _InfluxQL:
    """InfluxQL over the `/query` endpoint, which InfluxDB 1.x, 2.x (DBRP) and 3.x answer."""

    def __init__(self, url: str, database: str, headers: dict[str, str], timeout_s: float) -> None:
        self._url = url.rstrip("/")
        self._database = database
        self._headers = headers
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s), retries=False
        )

    def influxql(self, query: str) -> list[dict[str, Any]]:
        """Run one InfluxQL statement; the series of its first result (time in epoch ms)."""
        try:
            resp = self._http.request(
                "POST",
                f"{self._url}/query",
                fields={"db": self._database, "q": query, "epoch": "ms"},
                headers=self._headers,
                encode_multipart=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"query: {exc}") from exc
        _check(resp.status, resp.data)
        result = json.loads(resp.data)["results"][0]
        if "error" in result:
            raise StoreRejected(f"query: {result['error']}")
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def query(
        self,
        measurement: str,
        field: str,
        start_ms: int,
        end_ms: int,
        *,
        site: str | None = None,
        device_id: str | None = None,
        every_s: int | None = None,
        aggregate: Aggregate = "mean",
    ) -> list[tuple[int, Any]]:
        """`field` of `measurement` in [start, end), raw or aggregated into `every_s` buckets."""
        q = influxql_range(measurement, field, start_ms, end_ms, site, device_id, every_s, aggregate)
        return [(int(t), v) for s in self.influxql(q) for t, v in s["values"] if v is not None]


class InfluxV2Store(_InfluxQL):
    """InfluxDB through the v2 write API (1.8+, 2.x, 3.x, Cloud), with pre-formatted lines."""

    def __init__(self, url: str, token: str, org: str, bucket: str, timeout_s: float = 10.0) -> None:
        # Imported here, not with the module: influxdb-client brings its whole generated API
        # (about 500 modules, 13 MB resident), which the v1 store and the embedded one never use.
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        super().__init__(url, bucket, {"Authorization": f"Token {token}"}, timeout_s)
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000))
        # Synchronous mode: errors surface here, not in a batching callback.
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket, self._org = bucket, org
        self._milliseconds: WritePrecision = WritePrecision.MS  # type: ignore[assignment]  # a str constant
        self._api_exception = ApiException

    def write(self, lines: Sequence[str]) -> None:
        """Write one batch; raises StoreRejected (400) or StoreUnavailable (anything else)."""
        try:
            self._write_api.write(
                bucket=self._bucket,
                org=self._org,
                record="\n".join(lines),
                write_precision=self._milliseconds,
            )
        except self._api_exception as exc:
            _check(exc.status or 599, exc.body or exc.reason or "")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"write: {exc}") from exc

    def close(self) -> None:
        """Release connections."""
        self._client.close()  # type: ignore[no-untyped-call]


class InfluxV1Store(_InfluxQL):
    """InfluxDB 1.x through `/write?db=` (older servers that have no v2 API)."""

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        headers = {}
        if username:
            headers = urllib3.make_headers(basic_auth=f"{username}:{password or ''}")
        super().__init__(url, database, headers, timeout_s)
        self._write_url = f"{self._url}/write?db={quote(database)}&precision=ms"

    def write(self, lines: Sequence[str]) -> None:
        """Write one batch; raises StoreRejected (400) or StoreUnavailable (anything else)."""
        try:
            resp = self._http.request(
                "POST", self._write_url, body="\n".join(lines).encode(), headers=self._headers
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"write: {exc}") from exc
        _check(resp.status, resp.data)

    def close(self) -> None:
        """Release connections."""
        self._http.clear()
