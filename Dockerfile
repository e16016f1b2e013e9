# Dockerfile: recompose with the CUDA backend, NCCL and Open MPI.
#
#   docker build -t recompose .
#   docker run --rm --gpus all -v "$PWD/runs:/runs" recompose \
#       train configs/tiny.ini --out /runs/tiny
#   # all GPUs of the machine, one rank each:
#   docker run --rm --gpus all --shm-size=8g -v "$PWD/runs:/runs" \
#       --entrypoint mpirun recompose --allow-run-as-root -np 8 \
#       recompose train configs/paper.ini --out /runs/paper
#
# GPUs need the NVIDIA container runtime (nvidia-container-toolkit; --gpus).
# The devel image brings nvcc, cuDNN and NCCL; Ubuntu brings the rest.
# CMAKE_CUDA_ARCHITECTURES: 90 = H100/H200; add 80 for A100.
FROM nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04

ARG CUDA_ARCHS=90
ENV DEBIAN_FRONTEND=noninteractive

# Ubuntu 22.04's CMake (3.22) is new enough (3.18).
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config git \
        libopenblas-dev liblapacke-dev libinih-dev libjansson-dev \
        libturbojpeg0-dev libpng-dev zlib1g-dev libcairo2-dev fonts-dejavu-core \
        libavformat-dev libavcodec-dev libavutil-dev libswscale-dev \
        libopenmpi-dev openmpi-bin libdnnl-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/recompose
COPY . .
# RC_CUDA=ON: fail the build instead of silently building CPU-only.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRC_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS}" \
    && cmake --build build -j"$(nproc)" --target recompose \
    && ln -s /opt/recompose/build/recompose /usr/local/bin/recompose

ENTRYPOINT ["recompose"]
CMD ["--help"]
