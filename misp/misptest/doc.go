// Package misptest is a stand-in for a MISP server in tests, built from
// MISP's documented REST API (shared/data/misp/openapi.yaml and its
// README): the API key in the Authorization header (a wrong one is a 403
// with MISP's error body), Accept: application/json required (otherwise
// MISP serves HTML), ids and timestamps as JSON strings, flags as booleans,
// errors as {"name", "message", "url"}.
//
// It serves GET /feeds and /feeds/index ([{"Feed": {...}}], settings as a
// JSON string), POST /attributes/restSearch ({"response": {"Attribute":
// [...]}} honouring type, timestamp (>=, unix seconds; an unparseable value
// matches nothing), deleted (0, 1 or [0, 1]), to_ids, eventid,
// includeEventTags (event tags carry "inherited": 1), page (1-based) and
// limit), and GET /events/view/{id}. As in MISP, the Event embedded in a
// restSearch attribute has no threat_level_id.
//
// Tests change its data with AddFeed, EditFeed, DeleteFeed, AddEvent,
// EditEvent, DeleteEvent, AddAttribute, EditAttribute and DeleteAttribute
// (a soft delete, which, as in MISP, bumps the attribute's timestamp), and
// switch failures on with Fail (HTTP 500s, slow answers, invalid JSON, HTML,
// pages that never end, bodies that never end).
package misptest
