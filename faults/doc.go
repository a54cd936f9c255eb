// Package faults holds tests that put the limiter through real faults: a
// Redis killed with SIGKILL, a Redis that stops answering without closing
// its connections, a Redis restarted from its append-only file, two
// instances on one Redis with one of them cut off, a Redis Cluster that
// loses a master, Redis with a password and TLS, and a Rating API process
// fed hostile input.
//
// Every fault is a real process and a real network fault: redis-server
// processes started by internal/redistest, and connections broken by
// internal/faultproxy. The package has no code outside its tests.
package faults
