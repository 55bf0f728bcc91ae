// Package lua holds flashgate's Redis scripts. Each script touches only keys
// of one Redis Cluster hash tag (one shard of one item), or a single key,
// and documents its keys, arguments and reply at its top. They are wrapped, one typed Go
// function each, by package internal/redis.
package lua

import _ "embed"

// Reserve takes one unit from a shard for each of a batch of buyers,
// atomically with each one's duplicate check and outbox entry; a borrowing
// buyer's transfer is credited in the same step.
//
//go:embed reserve.lua
var Reserve string

// Take moves units out of a donor shard, logging the transfer.
//
//go:embed take.lua
var Take string

// Credit adds transferred units to a shard once per transfer id.
//
//go:embed credit.lua
var Credit string

// Release returns an order's unit to the user's home shard and clears the
// user's duplicate mark.
//
//go:embed release.lua
var Release string

// Preload sets a shard's stock unless it is already loaded.
//
//go:embed preload.lua
var Preload string

// Settle clears outbox entries whose orders are written to MySQL.
//
//go:embed settle.lua
var Settle string

// Relay answers the outbox entries a relay found due, each once a period.
//
//go:embed relay.lua
var Relay string

// Withdraw takes units not yet sold out of a shard, once per adjustment.
//
//go:embed withdraw.lua
var Withdraw string

// Count reads a shard's stock, units in transfer and outbox atomically.
//
//go:embed count.lua
var Count string

// Heartbeat records that a gateway is alive and counts the live gateways.
//
//go:embed heartbeat.lua
var Heartbeat string

// Fence is prefixed to every script that changes a shard's stock or buyer
// marks: it refuses a shard that Redis may have rewound.
//
//go:embed fence.lua
var Fence string

// Probe reports whether a shard is fenced.
//
//go:embed probe.lua
var Probe string

// Unfence marks a repaired shard verified by the running Redis process.
//
//go:embed unfence.lua
var Unfence string
