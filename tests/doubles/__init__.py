"""Test doubles and simulators, for the suites and bench/ alike: the LiveKit Twirp API
(livekit_twirp), an OpenAI-compatible LLM (openai_compat), Twilio (twilio_sim with its call and
REST halves twilio_sim_calls and twilio_sim_rest; twilio_http serving the REST half over real HTTP;
twilio_rebased pointing the twilio library at it), and the HTTP handler they share (http)."""
