"""InfluxQL targets, annotations and variables for Grafana's InfluxDB data source.

The foundation SDK ships no InfluxDB query type, so these implement its builder interface. Every
query is raw InfluxQL, which InfluxDB 1.x, 2.x (through a DBRP mapping) and 3.x all answer.
"""

from __future__ import annotations

from typing import Literal

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as model

DATASOURCE_UID = "facility-influxdb"
DATASOURCE = model.DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)

ResultFormat = Literal["time_series", "table"]


def tag_is(tag: str, variable: str) -> str:
    """A WHERE term matching a tag against a (possibly multi-valued) dashboard variable."""
    return f'"{tag}" =~ /^${variable}$/'


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL query of a panel."""

    def __init__(self, query: str, ref_id: str, result_format: ResultFormat, alias: str | None) -> None:
        self.query = query
        self.ref_id = ref_id
        self.result_format = result_format
        self.alias = alias

    def to_json(self) -> dict[str, object]:
        """The target as Grafana stores it."""
        payload: dict[str, object] = {
            "datasource": DATASOURCE,
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        return payload


class InfluxQL(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builds an `InfluxQLQuery`."""

    def __init__(
        self,
        query: str,
        ref_id: str = "A",
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
    ) -> None:
        self._query = InfluxQLQuery(" ".join(query.split()), ref_id, result_format, alias)

    def build(self) -> InfluxQLQuery:
        return self._query


class InfluxAnnotation(model.AnnotationQuery):
    """An annotation read from InfluxDB: each row's time, its text column and its tag columns."""

    def __init__(self, name: str, query: str, color: str, text_column: str, tags_columns: str) -> None:
        super().__init__(name=name, datasource=DATASOURCE, enable=True, hide=False, icon_color=color)
        self.query = " ".join(query.split())
        self.text_column = text_column
        self.tags_columns = tags_columns

    def to_json(self) -> dict[str, object]:
        """The annotation as Grafana stores it (the target shape of Grafana 10 and later)."""
        payload = super().to_json()
        payload["target"] = {
            "fromAnnotations": True,
            "query": self.query,
            "rawQuery": True,
            "refId": "Anno",
            "tagsColumn": self.tags_columns,
            "textColumn": self.text_column,
        }
        return payload


class Annotation(cogbuilder.Builder[model.AnnotationQuery]):
    """Builds an `InfluxAnnotation`."""

    def __init__(self, name: str, query: str, color: str, text_column: str, tags_columns: str) -> None:
        self._annotation = InfluxAnnotation(name, query, color, text_column, tags_columns)

    def build(self) -> InfluxAnnotation:
        return self._annotation


def tag_variable(name: str, label: str, query: str, *, multi: bool) -> board.QueryVariable:
    """A variable listing tag values (`SHOW TAG VALUES ...`), refreshed with the time range."""
    variable = (
        board.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(" ".join(query.split()))
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    if multi:
        variable = variable.multi(True).include_all(True)
    return variable
