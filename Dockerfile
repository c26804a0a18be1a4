# Streamwarden container image: one static-ish binary on distroless, one volume (/config).
#
#   docker build -t streamwarden .
#   docker run -p 8484:8484 -v /mnt/user/appdata/streamwarden:/config streamwarden

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
RUN mkdir src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/poll_and_history.rs && cp benches/poll_and_history.rs benches/rules.rs \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src src
COPY templates templates
COPY static static
COPY migrations migrations
COPY benches benches
COPY tests/fixtures tests/fixtures
RUN touch src/main.rs src/lib.rs && cargo build --release --locked \
    && install -D -m 0755 target/release/streamwarden /out/streamwarden \
    && install -d -o 99 -g 100 /out/config

# glibc, CA certificates and tzdata, no shell.
FROM gcr.io/distroless/cc-debian12
COPY --from=build /out/streamwarden /streamwarden
COPY --from=build --chown=99:100 /out/config /config
ENV STREAMWARDEN_DATA_DIR=/config \
    STREAMWARDEN_ADDRESS=0.0.0.0 \
    STREAMWARDEN_PORT=8484
# Unraid's nobody:users, the owner of appdata shares.
USER 99:100
VOLUME /config
EXPOSE 8484
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["/streamwarden", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/streamwarden"]
CMD ["serve"]

LABEL org.opencontainers.image.title="Streamwarden" \
      org.opencontainers.image.description="Who is streaming from your Plex, Jellyfin or Emby server, and is anyone sharing a login?" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
