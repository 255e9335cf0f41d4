# miniclaw in a container: a static binary on a small Debian (bash, git and
# CA certificates for the agent's bash tool), run as a non-root user.
#
#   docker build -t miniclaw .
#   docker run --rm -p 3210:3210 -e MINI_OPENCLAW_TOKEN=<16+ characters> \
#     -e ANTHROPIC_API_KEY -v miniclaw-data:/data -v miniclaw-workspace:/workspace miniclaw
#
# The gateway listens on 0.0.0.0 inside the container, so it refuses to start
# without MINI_OPENCLAW_TOKEN (at least 16 characters).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: fully static, nothing to match in the final image's libc.
RUN CGO_ENABLED=0 go build -trimpath -o /out/miniclaw ./cmd/miniclaw

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 miniclaw \
 && mkdir -p /workspace /data \
 && chown miniclaw:miniclaw /workspace /data
COPY --from=build /out/miniclaw /usr/local/bin/miniclaw
USER miniclaw
WORKDIR /workspace
# The data dir lies outside the workspace, out of the bash tool's reach.
ENV MINI_OPENCLAW_HOST=0.0.0.0 \
    MINI_OPENCLAW_WORKSPACE=/workspace \
    MINI_OPENCLAW_DATA_DIR=/data
VOLUME ["/workspace", "/data"]
EXPOSE 3210
ENTRYPOINT ["miniclaw"]
CMD ["gateway"]
