# The facility service (and the simulators): `docker compose up` builds it from this file.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    FACILITY_DATA_DIR=/data

WORKDIR /app
# The metadata first, so that a change of code does not reinstall the dependencies.
COPY pyproject.toml README.md ./
COPY facility/__init__.py facility/
RUN pip install --quiet . && pip uninstall --quiet --yes facility
COPY . .
# The data folder is the service's alone (facility also creates its files readable by it only).
RUN pip install --quiet --no-deps . \
    && useradd --system --uid 10001 --home-dir /data facility \
    && mkdir -p /data && chown facility /data && chmod 700 /data

USER facility
VOLUME ["/data"]
EXPOSE 8000
ENTRYPOINT ["facility"]
CMD ["serve", "--host", "0.0.0.0"]
