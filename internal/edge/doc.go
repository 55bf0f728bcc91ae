// Package edge holds the gateway's edge protection: the checks that reject a
// buy before it costs anything, in memory and without I/O.
//
//   - [Limiter]: per-key token buckets (per user, per IP) that answer 429
//     with a Retry-After.
//   - [IPResolver]: the client address behind trusted reverse proxies, from
//     X-Forwarded-For, so that a shopper cannot pick their own rate-limit key.
//   - [PathSigner]: the hidden buy path, an HMAC token bound to one user, one
//     item and the end of the sale.
//   - [BanStore], [BanCache] and [AutoBanner]: the ban list kept in Redis,
//     mirrored in every gateway's memory and fed automatically by repeated 429s.
//
// Everything a gateway calls per request (Limiter.Allow, IPResolver.ClientIP,
// PathSigner.Verify, BanCache.UserBanned and BanCache.IPBanned,
// AutoBanner.Record) allocates nothing and takes no process-wide lock: the
// limiter is split into independently locked shards and the ban list is an
// immutable snapshot read through an atomic pointer. The benchmarks in this
// package report allocations to keep it that way.
//
// Background work (Limiter.Run, BanCache.Run, AutoBanner.Run) runs in a
// goroutine owned by the caller and stops when its context is done.
package edge
