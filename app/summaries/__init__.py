"""Call summaries: the provider seam, the offline summarizer, redaction."""
