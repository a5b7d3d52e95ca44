"""Operations surface: health probes, Prometheus metrics and JSON log lines."""
