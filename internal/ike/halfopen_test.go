// Cookies (RFC 7296 §2.6) and the half-open caps: the cookie's form, its
// secret's rotation on the engine's clock, the order of the checks (no
// Diffie-Hellman before the cookie), the global and per-address caps, and
// a legitimate peer getting through when a spoofer holds a slot of its
// address.

package ike

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"net/netip"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/ike/message"
)

func TestCookieForm(t *testing.T) {
	clock := clocktest.New(time.Unix(1_800_000_000, 0))
	var j cookieJar
	if err := j.init(rand.Reader, clock.Now()); err != nil {
		t.Fatal(err)
	}
	ni := bytes.Repeat([]byte{7}, 32)
	ip := netip.MustParseAddr("192.0.2.1")
	spi := message.SPI{1, 2, 3, 4, 5, 6, 7, 8}
	c, err := j.make(clock.Now(), ni, ip, spi)
	if err != nil {
		t.Fatal(err)
	}
	// <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
	a16 := ip.As16()
	in := append(append(append(append([]byte(nil), ni...), a16[:]...), spi[:]...), j.cur.key[:]...)
	want := sha256.Sum256(in)
	if len(c) != 1+sha256.Size || c[0] != j.cur.version || !bytes.Equal(c[1:], want[:]) {
		t.Fatalf("cookie %x, want %02x|%x", c, j.cur.version, want)
	}
	if !j.valid(clock.Now(), c, ni, ip, spi) {
		t.Fatal("own cookie refused")
	}
	other := spi
	other[0] ^= 1
	for name, ok := range map[string]bool{
		"other SPIi":    j.valid(clock.Now(), c, ni, ip, other),
		"other address": j.valid(clock.Now(), c, ni, netip.MustParseAddr("192.0.2.9"), spi),
		"other nonce":   j.valid(clock.Now(), c, append([]byte{8}, ni[1:]...), ip, spi),
		"truncated":     j.valid(clock.Now(), c[:len(c)-1], ni, ip, spi),
		"other version": j.valid(clock.Now(), append([]byte{c[0] + 1}, c[1:]...), ni, ip, spi),
	} {
		if ok {
			t.Errorf("cookie accepted for %s", name)
		}
	}
	if n := testing.AllocsPerRun(100, func() { j.valid(clock.Now(), c, ni, ip, spi) }); n != 0 {
		t.Errorf("checking a cookie allocates %v times", n)
	}
}

// TestCookieRotation: the secret changes every cookieSecretLifetime on the
// engine's clock; cookies of the previous secret are accepted for
// cookieGrace after the change, then refused.
func TestCookieRotation(t *testing.T) {
	clock := clocktest.New(time.Unix(1_800_000_000, 0))
	var j cookieJar
	if err := j.init(rand.Reader, clock.Now()); err != nil {
		t.Fatal(err)
	}
	ni := bytes.Repeat([]byte{7}, 32)
	ip := netip.MustParseAddr("2001:db8::1")
	spi := message.SPI{8, 7, 6, 5, 4, 3, 2, 1}
	clock.Advance(cookieSecretLifetime - time.Second)
	old, _ := j.make(clock.Now(), ni, ip, spi)
	clock.Advance(time.Second) // the secret changes now
	fresh, _ := j.make(clock.Now(), ni, ip, spi)
	if fresh[0] == old[0] || bytes.Equal(fresh, old) {
		t.Fatalf("no new secret after %v: %x then %x", cookieSecretLifetime, old, fresh)
	}
	clock.Advance(cookieGrace - time.Second)
	if !j.valid(clock.Now(), old, ni, ip, spi) || !j.valid(clock.Now(), fresh, ni, ip, spi) {
		t.Fatal("within the grace period both secrets' cookies must pass")
	}
	clock.Advance(time.Second)
	if j.valid(clock.Now(), old, ni, ip, spi) {
		t.Fatal("a cookie of the previous secret passed after the grace period")
	}
	if !j.valid(clock.Now(), fresh, ni, ip, spi) {
		t.Fatal("a current cookie refused")
	}
	// After a long quiet time, the first use changes the secret, and the
	// last one's cookies (made before it expired) get only the grace.
	clock.Advance(time.Hour)
	if j.valid(clock.Now(), fresh, ni, ip, spi) {
		t.Fatal("an hour-old cookie passed")
	}
}

// TestCookieBeforeDH: when cookies are demanded, a request without one
// costs b no SA, no randomness and no Diffie-Hellman, only a stateless
// COOKIE answer.
func TestCookieBeforeDH(t *testing.T) {
	rnd := &countingReader{}
	w := newFakeWorld(t, nil, func(c *Config) { c.HalfOpenLimit = -1; c.Rand = rnd })
	if err := w.b.e.AddPeer(fakePeer(w.b, w.a, false)); err != nil {
		t.Fatal(err)
	}
	f := newInitFlooder(t, w)
	read0 := rnd.n.Load()
	for i := range 200 {
		var spi message.SPI
		_, _ = rand.Read(spi[:])
		ni := make([]byte, 32)
		_, _ = rand.Read(ni)
		if c := f.send(f.request(spi, ni, f.shares[0], nil), netip.AddrPortFrom(w.a.ip, uint16(20000+i))); c == nil {
			t.Fatalf("request %d: no cookie demanded", i)
		}
	}
	st := w.b.e.Stats()
	if n := rnd.n.Load() - read0; n != 0 || w.b.e.halfOpen.Load() != 0 || st.CookiesSent != 200 {
		t.Fatalf("requests without cookie: %d random bytes read, %d half-open SAs, %d cookies sent", n, w.b.e.halfOpen.Load(), st.CookiesSent)
	}
}

// TestHalfOpenGlobalCap: with many peers, the global cap binds; requests
// beyond it are dropped and counted, and slots free up as SAs expire.
func TestHalfOpenGlobalCap(t *testing.T) {
	w := newFakeWorld(t, nil, func(c *Config) { c.HalfOpenLimit = 1000; c.HalfOpenMax = 3 })
	f := newInitFlooder(t, w)
	var addrs []netip.Addr
	for i := range 6 {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
		addrs = append(addrs, a)
		p := fakePeer(w.b, w.a, false)
		p.Name, p.Remote = "p"+a.String(), a
		if err := w.b.e.AddPeer(p); err != nil {
			t.Fatal(err)
		}
	}
	flood := func() {
		for i := range 30 {
			var spi message.SPI
			_, _ = rand.Read(spi[:])
			ni := make([]byte, 32)
			_, _ = rand.Read(ni)
			from := netip.AddrPortFrom(addrs[i%len(addrs)], 500)
			req := f.request(spi, ni, f.shares[0], nil)
			if c := f.send(req, from); c != nil {
				f.send(f.request(spi, ni, f.shares[0], c), from)
			}
			if n := w.b.e.halfOpen.Load(); n > 3 {
				t.Fatalf("%d half-open SAs, cap 3", n)
			}
		}
	}
	flood()
	if n, full := w.b.e.halfOpen.Load(), w.b.e.Stats().HalfOpenFull; n != 3 || full == 0 {
		t.Fatalf("%d half-open SAs (want the cap, 3), %d requests dropped at the cap", n, full)
	}
	w.clock.Advance(halfOpenTimeout)
	settle()
	if n := w.b.e.halfOpen.Load(); n != 0 {
		t.Fatalf("%d half-open SAs after they expired", n)
	}
	flood()
	if n := w.b.e.halfOpen.Load(); n != 3 {
		t.Fatalf("%d half-open SAs after the slots freed up, want 3", n)
	}
}

// TestHalfOpenDefaults: a zero Config gets the documented caps.
func TestHalfOpenDefaults(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	if c := w.b.e.cfg; c.HalfOpenLimit != DefaultHalfOpenLimit || c.HalfOpenMax != DefaultHalfOpenMax || c.HalfOpenMaxPerAddr != DefaultHalfOpenMaxPerAddr {
		t.Fatalf("defaults: %d %d %d", c.HalfOpenLimit, c.HalfOpenMax, c.HalfOpenMaxPerAddr)
	}
	if DefaultHalfOpenMaxPerAddr < 2 || DefaultHalfOpenMax < DefaultHalfOpenLimit {
		t.Fatal("caps too small for a peer retrying, or below the cookie threshold")
	}
}

// TestSpoofedHalfOpenDoesNotLockOut: a sender that cannot receive at the
// peer's address gets one half-open SA in its name and no more (a second
// needs a cookie); the real peer answers the cookie and comes up.
func TestSpoofedHalfOpenDoesNotLockOut(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	if err := w.b.e.AddPeer(fakePeer(w.b, w.a, false)); err != nil {
		t.Fatal(err)
	}
	f := newInitFlooder(t, w)
	for i := range 20 {
		var spi message.SPI
		_, _ = rand.Read(spi[:])
		ni := make([]byte, 32)
		_, _ = rand.Read(ni)
		f.send(f.request(spi, ni, f.shares[0], nil), netip.AddrPortFrom(w.a.ip, uint16(30000+i))) // cookies ignored
	}
	if n := w.b.e.halfOpen.Load(); n != 1 {
		t.Fatalf("a blind spoofer holds %d half-open SAs, want 1", n)
	}
	cookies := w.b.e.Stats().CookiesSent
	if err := w.a.e.AddPeer(fakePeer(w.a, w.b, true)); err != nil {
		t.Fatal(err)
	}
	w.waitUp()
	if w.b.e.Stats().CookiesSent != cookies+1 {
		t.Errorf("the real peer was not asked for a cookie (%d, then %d)", cookies, w.b.e.Stats().CookiesSent)
	}
}

// FuzzCookieValid: a COOKIE from the network is never accepted unless it
// is exactly the one made for that request, and never panics.
func FuzzCookieValid(f *testing.F) {
	f.Add([]byte{}, bytes.Repeat([]byte{1}, 32), []byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{192, 0, 2, 1})
	f.Add(make([]byte, cookieLen), bytes.Repeat([]byte{1}, 16), []byte{}, []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(bytes.Repeat([]byte{0xff}, 64), bytes.Repeat([]byte{2}, 300), []byte{9}, []byte{})
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, c, ni, spi, ip []byte) {
		var j cookieJar
		if err := j.init(bytes.NewReader(bytes.Repeat([]byte{0x5a}, 64)), now); err != nil {
			t.Fatal(err)
		}
		var s message.SPI
		copy(s[:], spi)
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			addr = netip.IPv4Unspecified()
		}
		good, err := j.make(now, ni, addr, s)
		if err != nil {
			t.Fatal(err)
		}
		if got := j.valid(now, c, ni, addr, s); got != bytes.Equal(c, good) {
			t.Fatalf("valid(%x) = %v; the cookie is %x", c, got, good)
		}
		if !j.valid(now, good, ni, addr, s) {
			t.Fatal("the cookie made for the request does not pass")
		}
	})
}
