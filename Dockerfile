# Builds a static foretoken binary and runs the server on the models in /models.
#   docker build -t foretoken .
#   docker run -p 8080:8080 -v /path/to/gguf:/models foretoken
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/foretoken ./cmd/foretoken

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/foretoken /usr/local/bin/foretoken
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/foretoken"]
# Inside a container the server must listen beyond loopback to be reachable.
CMD ["serve", "--models", "/models", "--host", "0.0.0.0", "--port", "8080"]
