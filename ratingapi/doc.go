// Package ratingapi is a small demo service that shows the rate limiter
// wired into a chi router: clients rate items from 1 to 5 and read each
// item's average.
//
// The /v1 routes need an X-API-Key header and are rate limited per key;
// /healthz and /metrics need neither. Every error is a JSON object
// {"error": "..."} that says what is wrong, and nothing a client sends
// makes the service answer with a 5xx.
package ratingapi
