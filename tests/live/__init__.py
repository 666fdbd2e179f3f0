"""Live rig tests: real redis-server, livekit-server, livekit-sip, a real SIP phone (marker `live`)."""
