"""One gateway per external system (LiveKit, Twilio REST, LLM vendors)."""
