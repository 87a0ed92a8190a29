// Tests of the HMAC inside PRF against crypto/hmac: every key length
// around the block sizes (keys longer than a block are hashed first) and
// RFC 4231 test case 6, the allocations of Sum and Plus, and the kept PSK
// key.

package suite

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"testing"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

func TestPRFMatchesCryptoHMAC(t *testing.T) {
	for _, tc := range []struct {
		id message.PRFID
		h  func() hash.Hash
	}{
		{message.PRF_HMAC_SHA2_256, sha256.New},
		{message.PRF_HMAC_SHA2_384, sha512.New384},
		{message.PRF_HMAC_SHA2_512, sha512.New},
	} {
		p := mustPRF(t, tc.id)
		data := bytes.Repeat([]byte("0123456789abcdef"), 20)
		for klen := 0; klen <= 300; klen++ {
			key := make([]byte, klen)
			for i := range key {
				key[i] = byte(i*7 + klen)
			}
			for _, dlen := range []int{0, 1, 55, 64, 127, 128, 129, len(data)} {
				m := hmac.New(tc.h, key)
				m.Write(data[:dlen])
				want := m.Sum(nil)
				got := p.Sum([]byte("prefix"), key, data[:dlen/2], data[dlen/2:dlen])
				if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want) {
					t.Fatalf("%s key %d bytes data %d bytes: got %x want %x", tc.id, klen, dlen, got[6:], want)
				}
			}
			// prf+ written out with crypto/hmac, 3 blocks and a bit.
			n := 3*p.Size() + 5
			var ref, prev []byte
			for i := byte(1); len(ref) < n; i++ {
				m := hmac.New(tc.h, key)
				m.Write(prev)
				m.Write(data[:40])
				m.Write([]byte{i})
				prev = m.Sum(nil)
				ref = append(ref, prev...)
			}
			got, err := p.Plus(key, data[:40], n)
			if err != nil || !bytes.Equal(got, ref[:n]) {
				t.Fatalf("%s prf+ key %d bytes: got %x want %x (%v)", tc.id, klen, got, ref[:n], err)
			}
		}
	}
}

// RFC 4231 test case 6: a 131-byte key, longer than the SHA-2 block.
func TestPRFLongKeyKnownAnswer(t *testing.T) {
	key := bytes.Repeat([]byte{0xaa}, 131)
	data := []byte("Test Using Larger Than Block-Size Key - Hash Key First")
	for _, tc := range []struct {
		id   message.PRFID
		want string
	}{
		{message.PRF_HMAC_SHA2_256, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{message.PRF_HMAC_SHA2_512, "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352" +
			"6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"},
	} {
		if got := hex.EncodeToString(mustPRF(t, tc.id).Sum(nil, key, data)); got != tc.want {
			t.Errorf("%s: got %s", tc.id, got)
		}
	}
}

func TestPRFAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	p := mustPRF(t, message.PRF_HMAC_SHA2_256)
	key, seed, dst := make([]byte, 32), make([]byte, 80), make([]byte, 0, 64)
	// The state and the digest; crypto/hmac.New alone needs about six.
	if n := testing.AllocsPerRun(100, func() { p.Sum(dst, key, seed, seed) }); n > 2 {
		t.Errorf("Sum: %v allocations, want at most 2", n)
	}
	// Plus also allocates its result and the saved pad states.
	if n := testing.AllocsPerRun(100, func() { _, _ = p.Plus(key, seed, 168) }); n > 4 {
		t.Errorf("Plus: %v allocations, want at most 4", n)
	}
}

// The kept PSK key gives the same AUTH as the secret itself.
func TestPSKAuthWithKey(t *testing.T) {
	for _, id := range []message.PRFID{message.PRF_HMAC_SHA2_256, message.PRF_HMAC_SHA2_512} {
		p := mustPRF(t, id)
		secret, signed := []byte("secret-psk-0123456789"), []byte("first messagepeer nonce and more")
		want := PSKAuth(p, secret, signed)
		k := PSKKey(p, secret)
		if got := PSKAuthWith(p, k, signed); !bytes.Equal(got, want) {
			t.Errorf("%s: PSKAuthWith %x, PSKAuth %x", id, got, want)
		}
		if !VerifyPSKAuthWith(p, k, signed, want) || VerifyPSKAuthWith(p, k, signed[1:], want) {
			t.Errorf("%s: VerifyPSKAuthWith accepts the wrong AUTH or rejects the right one", id)
		}
	}
}
