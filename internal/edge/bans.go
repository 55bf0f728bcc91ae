package edge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate"
)

// Field names in the ban hash (see BanStore). Ban and reason share one hash
// so that one command writes or deletes both, even on Redis Cluster.
const (
	userFieldPrefix   = "u:"
	ipFieldPrefix     = "ip:"
	reasonFieldPrefix = "reason:"
)

// Ban is one entry of the ban list: a user or an IP address, kept out of the
// buy endpoint until it expires.
type Ban struct {
	// UserID is the banned user; 0 for an IP ban.
	UserID int64
	// IP is the banned address ("203.0.113.9"); empty for a user ban. An
	// IPv6 ban is of the address's /64 (see ClientNet): "2001:db8::1" and
	// "2001:db8::/64" both ban 2001:db8::/64, and List shows it so. It is
	// stored in canonical form: "::ffff:1.2.3.4" is 1.2.3.4.
	IP string
	// TTL is how long the ban lasts from when it is stored; 0 is for ever.
	// Only read by BanStore.Ban.
	TTL time.Duration
	// Reason says why, for the operators; it has no effect.
	Reason string
	// ExpiresAt is when the ban ends, the zero time for never. Only set by
	// BanStore.List.
	ExpiresAt time.Time
}

// BanStore is the ban list in Redis, shared by every gateway. It is the hash
// "<prefix>:bans": a ban is the field "u:<user id>" or "ip:<address>" whose
// value is its expiry in unix milliseconds, "0" for a ban that never
// expires, and its reason is the field "reason:" + that field. Every change
// is then published on the channel "<prefix>:bans:changed", the changed
// field as the message. Expired bans are removed lazily by List; until then
// every reader ignores them.
type BanStore struct {
	client  rueidis.Client
	key     string
	channel string
	strikes string // prefix of the auto-banner's counters: <prefix>:strikes:<user>:<window>
}

// NewBanStore returns the ban list kept under prefix (FLASHGATE_REDIS_PREFIX).
func NewBanStore(client rueidis.Client, prefix string) *BanStore {
	return &BanStore{
		client:  client,
		key:     prefix + ":bans",
		channel: prefix + ":bans:changed",
		strikes: prefix + ":strikes:",
	}
}

// Ban adds b to the list, or replaces the ban of the same user or IP, and
// tells every gateway. b names exactly one of UserID and IP and has no
// negative TTL, or the error is a *flashgate.Error with code Invalid naming
// the field. An error after the ban was stored (publishing failed) still
// leaves every gateway applying it within a second, by its periodic reload.
func (s *BanStore) Ban(ctx context.Context, b Ban) error {
	field, err := banField(b)
	if err != nil {
		return err
	}
	if b.TTL < 0 {
		return flashgate.Errorf(flashgate.Invalid, "ttl must not be negative")
	}
	var exp int64
	if b.TTL > 0 {
		exp = time.Now().Add(b.TTL).UnixMilli()
	}
	set := s.client.B().Hset().Key(s.key).FieldValue().
		FieldValue(field, strconv.FormatInt(exp, 10)).
		FieldValue(reasonFieldPrefix+field, b.Reason).
		Build()
	if err := s.client.Do(ctx, set).Error(); err != nil {
		return fmt.Errorf("store ban %s: %w", field, err)
	}
	return s.publish(ctx, field)
}

// Unban lifts the ban of the user or IP that b names, everywhere (b is
// checked as by Ban). Lifting a ban that does not exist is not an error.
func (s *BanStore) Unban(ctx context.Context, b Ban) error {
	field, err := banField(b)
	if err != nil {
		return err
	}
	del := s.client.B().Hdel().Key(s.key).Field(field, reasonFieldPrefix+field).Build()
	if err := s.client.Do(ctx, del).Error(); err != nil {
		return fmt.Errorf("delete ban %s: %w", field, err)
	}
	return s.publish(ctx, field)
}

// publish tells every BanCache that field changed. It is sent after the
// change is stored, never pipelined with it: on Redis Cluster the two would
// go to different nodes and the message could overtake the change.
func (s *BanStore) publish(ctx context.Context, field string) error {
	pub := s.client.B().Publish().Channel(s.channel).Message(field).Build()
	if err := s.client.Do(ctx, pub).Error(); err != nil {
		return fmt.Errorf("publish ban change %s: %w", field, err)
	}
	return nil
}

// List returns the bans in force, users by id and then IPs by address, with
// ExpiresAt set and TTL not. Expired bans are left out and then removed from
// Redis, unless the list changes meanwhile (that removal is best effort: a
// failure is not reported, and the next List tries again).
func (s *BanStore) List(ctx context.Context) ([]Ban, error) {
	m, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	var entries []banEntry
	var expired []string
	for field, value := range m {
		e, ok := parseBan(field, value)
		if !ok {
			continue
		}
		if e.expired(now) {
			expired = append(expired, field)
			continue
		}
		entries = append(entries, e)
	}
	if len(expired) > 0 {
		_ = s.purge(ctx, expired) // best effort, see above
	}
	slices.SortFunc(entries, compareBanEntries)
	bans := make([]Ban, len(entries))
	for i, e := range entries {
		b := &bans[i]
		b.UserID = e.userID
		if e.addr.IsValid() {
			b.IP = banIP(e.addr)
		}
		b.Reason = m[reasonFieldPrefix+e.field]
		if e.exp != 0 {
			b.ExpiresAt = time.UnixMilli(e.exp)
		}
	}
	return bans, nil
}

// compareBanEntries orders user bans by id, before IP bans by address.
func compareBanEntries(a, b banEntry) int {
	switch {
	case a.userID != 0 && b.userID != 0:
		return cmp.Compare(a.userID, b.userID)
	case a.userID != 0:
		return -1
	case b.userID != 0:
		return 1
	}
	return a.addr.Compare(b.addr)
}

// fetch reads the whole ban hash.
func (s *BanStore) fetch(ctx context.Context) (map[string]string, error) {
	m, err := s.client.Do(ctx, s.client.B().Hgetall().Key(s.key).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("read bans: %w", err)
	}
	return m, nil
}

// purge deletes the given ban fields, and their reasons, if they are still
// expired: under WATCH, so a ban renewed in the meantime survives (the
// transaction is then abandoned).
func (s *BanStore) purge(ctx context.Context, fields []string) error {
	return s.client.Dedicated(func(c rueidis.DedicatedClient) error {
		if err := c.Do(ctx, c.B().Watch().Key(s.key).Build()).Error(); err != nil {
			return fmt.Errorf("watch bans: %w", err)
		}
		values, err := c.Do(ctx, c.B().Hmget().Key(s.key).Field(fields...).Build()).ToArray()
		if err != nil {
			c.Do(ctx, c.B().Unwatch().Build())
			return fmt.Errorf("read expired bans: %w", err)
		}
		now := time.Now().UnixMilli()
		var del []string
		for i, v := range values {
			value, err := v.ToString()
			if err != nil {
				continue // gone already
			}
			if e, ok := parseBan(fields[i], value); ok && e.expired(now) {
				del = append(del, fields[i], reasonFieldPrefix+fields[i])
			}
		}
		if len(del) == 0 {
			return c.Do(ctx, c.B().Unwatch().Build()).Error()
		}
		resps := c.DoMulti(ctx,
			c.B().Multi().Build(),
			c.B().Hdel().Key(s.key).Field(del...).Build(),
			c.B().Exec().Build(),
		)
		for _, r := range resps {
			if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
				return fmt.Errorf("delete expired bans: %w", err)
			}
		}
		return nil
	})
}

// banEntry is one parsed ban: a user or an address, and its expiry.
type banEntry struct {
	field  string // as stored in the hash
	userID int64
	addr   netip.Addr
	exp    int64 // unix milliseconds; 0 for never
}

// expired reports whether the ban has ended at now (unix milliseconds).
func (e banEntry) expired(now int64) bool {
	return e.exp != 0 && now >= e.exp
}

// parseBan parses one field of the ban hash and its value. Reasons, and
// anything else that is not a well-formed ban, are not bans.
func parseBan(field, value string) (banEntry, bool) {
	e := banEntry{field: field}
	exp, err := strconv.ParseInt(value, 10, 64)
	if err != nil || exp < 0 {
		return e, false
	}
	e.exp = exp
	switch {
	case strings.HasPrefix(field, userFieldPrefix):
		id, err := strconv.ParseInt(field[len(userFieldPrefix):], 10, 64)
		if err != nil || id <= 0 {
			return e, false
		}
		e.userID = id
	case strings.HasPrefix(field, ipFieldPrefix):
		addr, err := parseBanIP(field[len(ipFieldPrefix):])
		if err != nil {
			return e, false
		}
		e.addr = addr
	default:
		return e, false
	}
	return e, true
}

// banField validates b and returns its field in the ban hash. A bad ban is
// the caller's fault: a flashgate.Invalid error naming the field.
func banField(b Ban) (string, error) {
	switch {
	case b.UserID != 0 && b.IP != "":
		return "", flashgate.Errorf(flashgate.Invalid, "give user_id or ip, not both")
	case b.UserID < 0:
		return "", flashgate.Errorf(flashgate.Invalid, "user_id must be a positive integer")
	case b.UserID > 0:
		return userFieldPrefix + strconv.FormatInt(b.UserID, 10), nil
	case b.IP != "":
		addr, err := parseBanIP(strings.TrimSpace(b.IP))
		if err != nil {
			return "", flashgate.Errorf(flashgate.Invalid, "ip %q %v", b.IP, err)
		}
		return ipFieldPrefix + banIP(addr), nil
	default:
		return "", flashgate.Errorf(flashgate.Invalid, "give user_id or ip")
	}
}

// parseBanIP parses the address of an IP ban, an address or an IPv6 /64
// ("2001:db8::/64"), into what the ban matches: ClientNet of it.
func parseBanIP(s string) (netip.Addr, error) {
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, errors.New("is not an IP address")
		}
		return ClientNet(addr), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() != 64 {
		return netip.Addr{}, errors.New("is not an IP address or an IPv6 /64")
	}
	return ClientNet(p.Addr()), nil
}

// banIP is how an IP ban is stored and listed: an IPv4 address, or an
// IPv6 /64 ("2001:db8::/64").
func banIP(addr netip.Addr) string {
	if addr.Is6() {
		return addr.String() + "/64"
	}
	return addr.String()
}

// addStrikes adds counts of 429s to the fleet's counters, one key per user
// and window, each created to live ttl, and returns the counters' new
// values. All go in one pipeline: on Redis Cluster, rueidis sends each key
// to its node. The key is created with its TTL before the increment, so a
// counter never lives for ever.
func (s *BanStore) addStrikes(ctx context.Context, counts map[strikeKey]int64, ttl time.Duration) (map[strikeKey]int64, error) {
	keys := make([]strikeKey, 0, len(counts))
	cmds := make(rueidis.Commands, 0, 2*len(counts))
	for k, n := range counts {
		key := s.strikes + strconv.FormatInt(k.userID, 10) + ":" + strconv.FormatInt(k.window, 10)
		keys = append(keys, k)
		cmds = append(cmds,
			s.client.B().Set().Key(key).Value("0").Nx().Px(ttl).Build(),
			s.client.B().Incrby().Key(key).Increment(n).Build())
	}
	totals := make(map[strikeKey]int64, len(keys))
	for i, r := range s.client.DoMulti(ctx, cmds...) {
		if i%2 == 0 {
			if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
				return nil, fmt.Errorf("count 429s: %w", err)
			}
			continue
		}
		n, err := r.AsInt64()
		if err != nil {
			return nil, fmt.Errorf("count 429s: %w", err)
		}
		totals[keys[i/2]] = n
	}
	return totals, nil
}
