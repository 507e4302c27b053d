# KServe serving base for the rig, built locally FROM a debootstrapped Debian (no Docker Hub): what
# the action's kserve runtime needs from a base. A venv on PATH that uid 1000 may extend (so a
# model image can install its requirements without switching user), holding kserve,
# mlflow-skinny (the pyfunc loader) and uv. Nothing model-specific: no scikit-learn.
# Build context: a directory holding this file (as Dockerfile) and base-requirements.txt
# (see parts/kserve_base.sh).
FROM local/debian:bookworm

ARG KSERVE_VERSION
ARG MLFLOW_VERSION
ARG RECIPE

# The build machine's extra CAs (/usr/local/share/ca-certificates, e.g. an egress proxy's), so pip
# and uv reach PyPI from here and from model images built on top. Empty where there are none.
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates libgomp1 \
 && update-ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

# Non-root user kserve (uid 1000, gid 1000; also in group 0 as OpenShift-style images are).
RUN echo 'kserve:x:1000:1000:KServe:/home/kserve:/bin/sh' >>/etc/passwd \
 && echo 'kserve:x:1000:' >>/etc/group \
 && echo 'kserve:*:19000:0:99999:7:::' >>/etc/shadow \
 && sed -i 's/^root:x:0:$/root:x:0:kserve/' /etc/group \
 && mkdir -p /home/kserve \
 && chown 1000:1000 /home/kserve

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy

COPY base-requirements.txt /opt/venv-requirements.txt
RUN python3 -m venv /opt/venv \
 && pip install --no-deps -r /opt/venv-requirements.txt \
 && python -c "import kserve, mlflow.pyfunc, uv; print('kserve', kserve.__version__ if hasattr(kserve, '__version__') else '?', 'mlflow', mlflow.__version__)" \
 && chown -R 1000:0 /opt/venv \
 && chmod -R g+w /opt/venv

LABEL org.opencontainers.image.title="kserve-base" \
      org.opencontainers.image.description="KServe model server + mlflow-skinny + uv serving base (rig build; no model libraries)" \
      org.opencontainers.image.base.name="local/debian:bookworm" \
      io.mlflow-k8s-deploy.rig.kserve-version="${KSERVE_VERSION}" \
      io.mlflow-k8s-deploy.rig.mlflow-version="${MLFLOW_VERSION}" \
      io.mlflow-k8s-deploy.rig.python-version="3.11" \
      io.mlflow-k8s-deploy.rig.recipe="${RECIPE}"

USER 1000
WORKDIR /home/kserve
EXPOSE 8080
