// Package alert tells people when a query meets a dangerous address. Its
// one channel is Slack: NewSlack builds a Notifier from alerts.slack, the
// query path hands it every freshly computed answer with Observe, and Run,
// one goroutine beside the servers, posts the alerts with chat.postMessage.
//
// The query path must never wait for Slack, so Observe does almost nothing:
// it keeps only the verdicts that alert (alerts.slack.verdicts) and puts a
// copy of the answer's headline fields into a bounded queue without
// blocking. When the queue is full the alert is dropped and counted; a slow
// or dead Slack costs alerts, never query latency.
//
// Run turns the queue into messages. An address is alerted once per dedup
// window (alerts.slack.dedup; the window remembers at most
// alerts.slack.dedup_size addresses, least recently alerted forgotten
// first). Alerts are batched: a message lists up to batch_size addresses
// and is sent when it is full or when its first alert has waited
// batch_window. At most per_minute messages are sent in any minute, and a
// 429 answer from Slack holds the batch back for the Retry-After it names.
// Network failures and 5xx answers are retried a few times with backoff;
// an answer of {"ok": false} (for example channel_not_found) fails the
// batch at once, because repeating it would not help. Every decision that
// depends on time reads the injected clock, so tests drive windows, rate
// limits and Retry-After without waiting.
//
// The Slack token is a secret: it is sent only to the configured API URL
// (redirects are not followed), and it never appears in a log line or an
// error.
//
// Wiring: a nil *Notifier, returned when neither token nor channel is
// configured, is valid and does nothing, so callers may pass it along
// unchecked or skip it.
package alert
