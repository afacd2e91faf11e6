// Package webhook tells ticket systems what happens in support sessions:
// admins register HTTPS endpoints, each with a secret the broker generates
// and shows once, and choose the events they want; the broker POSTs each
// event to each subscribed endpoint, signed, and retries with backoff.
//
// # Requests
//
// Every delivery is a POST with these headers:
//
//	Content-Type: application/json
//	User-Agent: Tether-Webhooks/1
//	Tether-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//	Tether-Event: <event type>
//	Tether-Delivery: <delivery id, as listed by the admin API>
//
// To verify, take the raw body, compute HMAC-SHA256 keyed with the secret
// (the whole "whsec_..." text) over the timestamp, a dot and the body,
// compare it in constant time with v1, and refuse timestamps more than a
// few minutes old. Verify does this for Go receivers.
//
// After an admin gives an endpoint a new secret, the old one keeps
// working for a grace period (SecretGrace, a day, unless the admin asks
// for less or none): each request then carries two v1 signatures, by the
// new secret first and the old one second, and a receiver accepts it when
// any v1 matches the secret it holds. Then the old secret is dropped.
//
// Any 2xx answer within 10 s is success. Anything else (other statuses,
// redirects, timeouts, refused connections) is retried after 10 s, 30 s,
// 1.5 min, 4.5 min, … capped at 6 h, for at most 10 attempts. Deliveries
// are at least once: a receiver may see an event twice (after a broker
// restart or a redelivery) and should drop repeated event IDs.
//
// Deliveries are not in order: while one waits for its retry, later events
// go out, so after an outage session.ended can arrive before
// session.created, and session.started can arrive before the
// consent.granted it follows. Each endpoint gets one request at a time,
// so a receiver that is slow or down delays only its own deliveries. Every event carries a
// sequence number that grows with each event the broker publishes, in the
// order they happened (also across restarts); receivers order a session's
// events by it, and do not let an older event undo a newer one.
//
// # Body
//
//	{"id": "evt_...", "type": "session.ended", "sequence": 1795440000000000, "created_at": "2026-11-23T12:00:00Z", "data": {...}}
//
// Times are RFC 3339 in UTC. Every data object starts with session_id,
// ticket_id, ticket_system, ticket_url, ticket_title ("" when not given),
// initiated_by ("technician" or "user") and technician (the owner's
// username). The types, with their data (the Go types of the same name
// document each field):
//
//	session.created   SessionCreated: permissions_requested, code_expires_at (left out once the code is
//	                  used, as for a claimed session), created_at (never the code)
//	host.connected    HostConnected: host {hostname, os}, connected_at
//	consent.granted   ConsentGranted: viewer, requested, granted, at
//	consent.denied    ConsentDenied: viewer, requested, reason ("denied", "timeout", or "not_shown": the
//	                  user's computer could not put the question), at
//	consent.revoked   ConsentRevoked: permission, at
//	session.started   SessionStarted: viewer, started_at — once, when the user first lets someone in
//	                  (allows anything: the screen, or only a terminal), the API's live_at
//	session.ended     SessionEnded: created_at, started_at (null if never started), ended_at,
//	                  duration_seconds (from started_at), end_reason, end_cause (end_reason in a
//	                  word: user, technician, admin, declined, not_asked, code_expired, host_lost,
//	                  display_gone, abandoned, recording_failed, shutdown, broker_stopped),
//	                  permissions_granted (union over
//	                  the session), viewers (those the user let in), joined (everyone who joined,
//	                  let in or not), closing_notes, files_moved (name, size, sha256,
//	                  direction, technician, at), shell_commands (command as typed, technician,
//	                  at; at most 1000) — once per session
//	recording.ready   RecordingReady: state, size_bytes, duration_ms, segments, frames_relayed, frames_written,
//	                  manifest_sha256 (of the archive's manifest.json as sealed), url (the recording
//	                  in the API, an absolute link like the API's join_url), at
//
// Receivers should ignore fields they do not know: new ones may come.
//
// # Safety
//
// Endpoint URLs must be https (tests that set Config.AllowLoopback may use
// http to this machine). The
// broker refuses hosts that are or resolve to link-local addresses
// (169.254.0.0/16, fe80::/10: cloud metadata lives there), known metadata
// addresses and non-unicast ones, and loopback unless
// Config.AllowLoopback is set; it checks again at every connection, so a
// DNS change cannot point a registered name at them. Redirects are not
// followed and no proxy is used. Secrets are never logged, nor are URLs
// (only their host).
package webhook
