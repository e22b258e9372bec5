# The SimplRefQ app image: the API, the mini-app and the bot (webhook or polling).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 simplrefq
WORKDIR /app

COPY pyproject.toml README.md ./
COPY backend ./backend
COPY bot ./bot
# Editable, so the package finds webapp/ and static/ beside it in /app.
RUN pip install -e .
COPY webapp ./webapp
COPY static ./static
# The deposit addresses come from the compiled forwarder's creation code.
COPY contracts/evm/artifacts ./contracts/evm/artifacts

USER simplrefq
ENV APP_HOST=0.0.0.0 APP_PORT=8000 APP_DATA_DIR=/app/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["simplrefq", "serve"]
