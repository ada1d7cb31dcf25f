module go.opentelemetry.io/otel

go 1.23.0
