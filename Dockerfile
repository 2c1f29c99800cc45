# Step-Audio-EditX Space: the Gradio app, the OpenAI-compatible HTTP API and the CLI in one image.
#
#   docker build -t stepedit .                              # CPU image: the lite engine works with no downloads
#   docker build -t stepedit:cuda --build-arg DEVICE=cuda . # CUDA image: the real model on an NVIDIA GPU
#
# Run commands (volumes for weights, voices and the Hugging Face cache) are in README.md, "Docker".
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

# cpu: torch from the CPU wheel index (small); cuda: torch's CUDA 12.8 wheels (they bundle the CUDA runtime;
# the host needs only the NVIDIA driver and the container toolkit: `docker run --gpus all`).
ARG DEVICE=cpu
ARG TORCH_INDEX_CPU=https://download.pytorch.org/whl/cpu
ARG TORCH_INDEX_CUDA=https://download.pytorch.org/whl/cu128

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HOME=/home/app STEPEDIT_DATA_DIR=/data HF_HOME=/data/huggingface

WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN case "$DEVICE" in \
      cpu)  index="$TORCH_INDEX_CPU" ;; \
      cuda) index="$TORCH_INDEX_CUDA" ;; \
      *)    echo "DEVICE must be cpu or cuda, got $DEVICE" >&2; exit 1 ;; \
    esac \
 && pip install --extra-index-url "$index" -r requirements.txt

COPY app.py pyproject.toml README.md LICENSE ./
COPY app_ui ./app_ui
COPY stepedit_core ./stepedit_core
COPY examples ./examples

# an unprivileged user; /data holds the voice library, the lite engine's joined models and the HF cache
RUN useradd --create-home --home-dir /home/app --uid 1000 app \
 && mkdir -p /data && chown app:app /data
USER app
VOLUME ["/data"]

# 7860: the Gradio app (with --api, the HTTP API at /v1 too); 8000: `python -m stepedit_core serve`
EXPOSE 7860 8000
CMD ["python", "app.py", "--server-name", "0.0.0.0", "--port", "7860", "--api"]
