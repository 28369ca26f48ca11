"""Grafana for the engineers: dashboards as code, their provisioning, and a push into a running Grafana."""
