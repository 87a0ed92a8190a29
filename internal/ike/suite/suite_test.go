// Known-answer and two-sided tests for PRFs, key schedule, DH, AEAD, AUTH
// and NAT-D.

package suite

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPRF(t testing.TB, id message.PRFID) PRF {
	t.Helper()
	p, err := NewPRF(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// RFC 4231 test cases 1 and 2.
func TestPRFKnownAnswers(t *testing.T) {
	tests := []struct {
		id        message.PRFID
		key, data []byte
		want      string
	}{
		{message.PRF_HMAC_SHA2_256, bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"),
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{message.PRF_HMAC_SHA2_384, bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"),
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"},
		{message.PRF_HMAC_SHA2_512, bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"),
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
		{message.PRF_HMAC_SHA2_256, []byte("Jefe"), []byte("what do ya want for nothing?"),
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{message.PRF_HMAC_SHA2_384, []byte("Jefe"), []byte("what do ya want for nothing?"),
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"},
		{message.PRF_HMAC_SHA2_512, []byte("Jefe"), []byte("what do ya want for nothing?"),
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
	}
	for _, tc := range tests {
		p := mustPRF(t, tc.id)
		// split the data to check that Sum concatenates its inputs
		got := p.Sum(nil, tc.key, tc.data[:3], tc.data[3:])
		if hex.EncodeToString(got) != tc.want || len(got) != p.Size() {
			t.Errorf("%s: got %x", tc.id, got)
		}
	}
	if _, err := NewPRF(message.PRF_HMAC_SHA1); err == nil {
		t.Error("HMAC-SHA1 PRF accepted")
	}
}

// prfPlusRef is prf+ written directly from RFC 7296 §2.13.
func prfPlusRef(key, seed []byte, n int) []byte {
	var out, t []byte
	for i := byte(1); len(out) < n; i++ {
		m := hmac.New(sha256.New, key)
		m.Write(t)
		m.Write(seed)
		m.Write([]byte{i})
		t = m.Sum(nil)
		out = append(out, t...)
	}
	return out[:n]
}

func TestPRFPlus(t *testing.T) {
	p := mustPRF(t, message.PRF_HMAC_SHA2_256)
	key, seed := []byte("key"), []byte("seed material")
	for _, n := range []int{0, 1, 31, 32, 33, 100, 255 * 32} {
		got, err := p.Plus(key, seed, n)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got, prfPlusRef(key, seed, n)) {
			t.Fatalf("n=%d: prf+ differs from the reference", n)
		}
	}
	if _, err := p.Plus(key, seed, 255*32+1); err == nil {
		t.Fatal("prf+ beyond 255 iterations accepted")
	}
	if _, err := (PRF{}).Plus(key, seed, 1); err == nil {
		t.Fatal("zero PRF accepted")
	}
}

func TestIKEKeySchedule(t *testing.T) {
	ni, nr := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	gir := bytes.Repeat([]byte{3}, 256)
	spii, spir := message.SPI{1, 1, 1, 1, 1, 1, 1, 1}, message.SPI{2, 2, 2, 2, 2, 2, 2, 2}
	params := Params{PRF: message.PRF_HMAC_SHA2_256, Encr: message.ENCR_AES_GCM_16, KeyBits: 256}
	k, err := NewIKEKeys(params, gir, ni, nr, spii, spir)
	if err != nil {
		t.Fatal(err)
	}
	// independent computation
	m := hmac.New(sha256.New, append(append([]byte{}, ni...), nr...))
	m.Write(gir)
	skeyseed := m.Sum(nil)
	seed := append(append(append(append([]byte{}, ni...), nr...), spii[:]...), spir[:]...)
	km := prfPlusRef(skeyseed, seed, 32+36+36+32+32)
	want := [][]byte{km[:32], nil, nil, km[32:68], km[68:104], km[104:136], km[136:168]}
	got := []Key{k.D, k.Ai, k.Ar, k.Ei, k.Er, k.Pi, k.Pr}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("key %d: got %x want %x", i, []byte(got[i]), want[i])
		}
	}
	// Rekey: prf(SK_d(old), g^ir(new) | Ni | Nr), then the same expansion.
	gir2 := bytes.Repeat([]byte{4}, 32)
	rs := RekeySKEYSEED(mustPRF(t, message.PRF_HMAC_SHA2_256), k.D, gir2, ni, nr)
	m = hmac.New(sha256.New, k.D)
	m.Write(append(append(append([]byte{}, gir2...), ni...), nr...))
	if !bytes.Equal(rs, m.Sum(nil)) {
		t.Fatal("rekey SKEYSEED differs")
	}
	k2, err := DeriveIKEKeys(params, rs, ni, nr, spii, spir)
	if err != nil || bytes.Equal(k2.D, k.D) {
		t.Fatalf("rekeyed keys: %v", err)
	}
	k.Zero()
	if !bytes.Equal(k.Ei, make([]byte, 36)) {
		t.Fatal("Zero left key material")
	}
}

func TestChildKeys(t *testing.T) {
	prf := mustPRF(t, message.PRF_HMAC_SHA2_256)
	skd := Key(bytes.Repeat([]byte{7}, 32))
	ni, nr, gir := []byte("nonce-i-nonce-i-"), []byte("nonce-r-nonce-r-"), []byte("g^ir")
	for _, bits := range []int{128, 256} {
		for _, pfs := range [][]byte{nil, gir} {
			p := Params{Encr: message.ENCR_AES_GCM_16, KeyBits: bits}
			ck, err := DeriveChildKeys(prf, skd, p, pfs, ni, nr)
			if err != nil {
				t.Fatal(err)
			}
			el := bits/8 + 4
			km := prfPlusRef(skd, append(append(append([]byte{}, pfs...), ni...), nr...), 2*el)
			if !bytes.Equal(ck.EncrI2R, km[:el]) || !bytes.Equal(ck.EncrR2I, km[el:]) || ck.IntegI2R != nil {
				t.Fatalf("bits %d pfs %v: KEYMAT split wrong", bits, pfs != nil)
			}
		}
	}
	bad := []Params{
		{Encr: message.ENCR_AES_CBC, KeyBits: 256},
		{Encr: message.ENCR_AES_GCM_16, KeyBits: 100},
		{Encr: message.ENCR_AES_GCM_16, KeyBits: 256, Integ: message.AUTH_HMAC_SHA2_256_128},
	}
	for _, p := range bad {
		if _, err := DeriveChildKeys(prf, skd, p, nil, ni, nr); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	if _, err := NewIKEKeys(Params{PRF: 99, Encr: message.ENCR_AES_GCM_16, KeyBits: 128}, nil, nil, nil, message.SPI{}, message.SPI{}); err == nil {
		t.Error("unknown PRF accepted")
	}
}

func TestModpPrime(t *testing.T) {
	p := modpPrime()
	if p.BitLen() != 2048 || !p.ProbablyPrime(20) {
		t.Fatal("group 14 modulus is not a 2048-bit prime")
	}
	q := new(big.Int).Rsh(p, 1)
	if !q.ProbablyPrime(20) {
		t.Fatal("group 14 modulus is not a safe prime")
	}
}

func TestDHAgreement(t *testing.T) {
	for _, tc := range []struct {
		g      message.DHGroup
		pubLen int
	}{{message.MODP_2048, 256}, {message.ECP_256, 64}, {message.CURVE_25519, 32}} {
		t.Run(tc.g.String(), func(t *testing.T) {
			a, err := NewDH(tc.g, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewDH(tc.g, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a.Group() != tc.g || len(a.Public()) != tc.pubLen {
				t.Fatalf("group %s public %d bytes", a.Group(), len(a.Public()))
			}
			s1, err := a.Shared(b.Public())
			if err != nil {
				t.Fatal(err)
			}
			s2, err := b.Shared(a.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s1, s2) {
				t.Fatal("shared secrets differ")
			}
			if bytes.Equal(a.Public(), b.Public()) {
				t.Fatal("two key pairs are equal")
			}
			bads := [][]byte{nil, make([]byte, tc.pubLen-1), make([]byte, tc.pubLen)}
			if tc.g != message.CURVE_25519 { // X25519 takes any 32 bytes (RFC 7748 §5)
				bads = append(bads, bytes.Repeat([]byte{0xff}, tc.pubLen))
			}
			for _, bad := range bads {
				if _, err := a.Shared(bad); err == nil {
					t.Errorf("peer value %x accepted", bad)
				}
			}
		})
	}
	if _, err := NewDH(message.ECP_384, nil); err == nil {
		t.Error("unsupported group accepted")
	}
}

func TestDHRejectsEdgeValues(t *testing.T) {
	d, err := NewDH(message.MODP_2048, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := modpPrime()
	for _, v := range []*big.Int{big.NewInt(1), new(big.Int).Sub(p, big.NewInt(1)), p} {
		if _, err := d.Shared(v.FillBytes(make([]byte, 256))); err == nil {
			t.Errorf("y=%x accepted", v)
		}
	}
	if _, err := d.Shared(big.NewInt(2).FillBytes(make([]byte, 256))); err != nil {
		t.Errorf("y=2 rejected: %v", err)
	}
	// ECP-256: x|y of a point not on the curve.
	e, _ := NewDH(message.ECP_256, nil)
	bad := append([]byte{}, e.Public()...)
	bad[63] ^= 1
	if _, err := e.Shared(bad); err == nil {
		t.Error("ECP-256 point off the curve accepted")
	}
	// X25519: a low-order point (order 8) yields an all-zero secret.
	x, _ := NewDH(message.CURVE_25519, nil)
	low := unhex(t, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
	if _, err := x.Shared(low); err == nil {
		t.Error("X25519 low-order point accepted")
	}
}

// GCM known answers: McGrew & Viega, "The Galois/Counter Mode of Operation",
// test cases 4 (AES-128) and 16 (AES-256), nonce cafebabe|facedbaddecaf888.
func TestAEADKnownAnswers(t *testing.T) {
	pt := unhex(t, `d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
		1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39`)
	aad := unhex(t, "feedfacedeadbeeffeedfacedeadbeefabaddad2")
	tests := []struct{ key, ct, tag string }{
		{"feffe9928665731c6d6a8f9467308308",
			`42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
			21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091`,
			"5bc94fbc3221a5db94fae95ae7121a47"},
		{"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
			`522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
			8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662`,
			"76fc6ece0f4e1768cddf8853bb2d551b"},
	}
	for _, tc := range tests {
		key := append(unhex(t, tc.key), 0xca, 0xfe, 0xba, 0xbe)
		a, err := NewAEAD(message.ENCR_AES_GCM_16, key)
		if err != nil {
			t.Fatal(err)
		}
		iv := unhex(t, "facedbaddecaf888")
		buf := make([]byte, len(pt), len(pt)+16)
		copy(buf, pt)
		if err := a.SealWithIV(iv, buf, aad); err != nil {
			t.Fatal(err)
		}
		want := unhex(t, tc.ct+tc.tag)
		if got := buf[:len(pt)+16]; !bytes.Equal(got, want) {
			t.Fatalf("key %d bits:\n got %x\nwant %x", 8*(len(key)-4), got, want)
		}
		body := append(append([]byte{}, iv...), want...)
		out, err := a.Open(nil, body, aad)
		if err != nil || !bytes.Equal(out, pt) {
			t.Fatalf("Open: %v", err)
		}
	}
}

func TestAEADSealOpen(t *testing.T) {
	key := Key(bytes.Repeat([]byte{0x42}, 36))
	a, err := NewAEAD(message.ENCR_AES_GCM_16, key)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("header")
	seal := func(pt string) []byte {
		body := make([]byte, 8+len(pt), 8+len(pt)+16)
		copy(body[8:], pt)
		if err := a.Seal(body[:8], body[8:], aad); err != nil {
			t.Fatal(err)
		}
		return body[:8+len(pt)+16]
	}
	b1, b2 := seal("hello"), seal("hello")
	if bytes.Equal(b1[:8], b2[:8]) || bytes.Equal(b1, b2) {
		t.Fatal("IV repeated")
	}
	if got, err := a.Open(nil, b1, aad); err != nil || string(got) != "hello" {
		t.Fatalf("Open: %q %v", got, err)
	}
	for i := range b1 {
		c := append([]byte{}, b1...)
		c[i] ^= 0x80
		if _, err := a.Open(nil, c, aad); !errors.Is(err, ErrAuth) {
			t.Fatalf("flipped byte %d accepted: %v", i, err)
		}
	}
	if _, err := a.Open(nil, b1, []byte("Header")); !errors.Is(err, ErrAuth) {
		t.Fatal("wrong AAD accepted")
	}
	if _, err := a.Open(nil, b1[:23], aad); err == nil {
		t.Fatal("short body accepted")
	}
	if err := a.Seal(make([]byte, 8), make([]byte, 4), aad); err == nil {
		t.Fatal("Seal without ICV room succeeded")
	}
	for _, n := range []int{0, 16, 20 - 1, 37} {
		if _, err := NewAEAD(message.ENCR_AES_GCM_16, make(Key, n)); err == nil {
			t.Errorf("key of %d bytes accepted", n)
		}
	}
	if _, err := NewAEAD(message.ENCR_AES_CBC, key); err == nil {
		t.Error("CBC accepted")
	}
	if a.IVLen() != 8 || a.ICVLen() != 16 {
		t.Error("IV/ICV lengths")
	}
}

func TestKeyRedacted(t *testing.T) {
	k := Key{0xde, 0xad, 0xbe, 0xef}
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "key", k)
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%s %v %x %X %d %#v %q", k, k, k, k, k, k, k),
		fmt.Sprintf("%v", IKEKeys{D: k}), fmt.Sprintf("%+v", &ChildKeys{EncrI2R: k}), sb.String(),
	}
	for _, o := range outs {
		if strings.Contains(strings.ToLower(o), "dead") || strings.Contains(o, "222") {
			t.Errorf("key leaked: %s", o)
		}
	}
	k.Zero()
	if !bytes.Equal(k, make([]byte, 4)) {
		t.Error("Zero")
	}
}

func TestNATDetectionHash(t *testing.T) {
	spii, spir := message.SPI{1, 2, 3, 4, 5, 6, 7, 8}, message.SPI{}
	ip := netip.MustParseAddr("192.0.2.1")
	want := sha1.Sum(append(append(append(spii[:], spir[:]...), 192, 0, 2, 1), 0x01, 0xf4))
	if got := NATDetectionHash(spii, spir, ip, 500); got != want {
		t.Fatalf("got %x want %x", got, want)
	}
	if NATDetectionHash(spii, spir, netip.AddrFrom16(ip.As16()), 500) != want {
		t.Fatal("IPv4-mapped address hashed differently")
	}
	ip6 := netip.MustParseAddr("2001:db8::1")
	a := ip6.As16()
	want6 := sha1.Sum(append(append(append(spii[:], spir[:]...), a[:]...), 0x11, 0x94))
	if NATDetectionHash(spii, spir, ip6, 4500) != want6 {
		t.Fatal("IPv6 hash")
	}
}

func TestPSKAuth(t *testing.T) {
	prf := mustPRF(t, message.PRF_HMAC_SHA2_256)
	skp := Key(bytes.Repeat([]byte{9}, 32))
	id := (&message.ID{IDType: message.ID_FQDN, Data: []byte("host-a")}).Body()
	signed := SignedOctets(prf, skp, []byte("first message"), []byte("peer nonce"), id)
	m := hmac.New(sha256.New, skp)
	m.Write([]byte{byte(message.ID_FQDN), 0, 0, 0})
	m.Write([]byte("host-a"))
	if want := append([]byte("first messagepeer nonce"), m.Sum(nil)...); !bytes.Equal(signed, want) {
		t.Fatal("signed octets")
	}
	auth := PSKAuth(prf, []byte("secret"), signed)
	m = hmac.New(sha256.New, []byte("secret"))
	m.Write([]byte("Key Pad for IKEv2"))
	m = hmac.New(sha256.New, m.Sum(nil))
	m.Write(signed)
	if !bytes.Equal(auth, m.Sum(nil)) {
		t.Fatal("PSK AUTH")
	}
	if !VerifyPSKAuth(prf, []byte("secret"), signed, auth) || VerifyPSKAuth(prf, []byte("Secret"), signed, auth) {
		t.Fatal("VerifyPSKAuth")
	}
}

// TestAlgorithmIdentifiers rebuilds the RFC 7427 Appendix A encodings from
// the OIDs with encoding/asn1.
func TestAlgorithmIdentifiers(t *testing.T) {
	type algID struct {
		OID    asn1.ObjectIdentifier
		Params asn1.RawValue `asn1:"optional"`
	}
	null := asn1.RawValue{Tag: asn1.TagNull}
	enc := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsa := func(n int) []byte { return enc(algID{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, n}, null}) }
	ec := func(n int) []byte {
		return enc(struct{ OID asn1.ObjectIdentifier }{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, n}})
	}
	sha256ID := algID{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, null}
	pss := enc(struct {
		OID    asn1.ObjectIdentifier
		Params struct {
			Hash algID `asn1:"explicit,tag:0"`
			MGF  struct {
				OID  asn1.ObjectIdentifier
				Hash algID
			} `asn1:"explicit,tag:1"`
			Salt int `asn1:"explicit,tag:2"`
		}
	}{OID: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}, Params: struct {
		Hash algID `asn1:"explicit,tag:0"`
		MGF  struct {
			OID  asn1.ObjectIdentifier
			Hash algID
		} `asn1:"explicit,tag:1"`
		Salt int `asn1:"explicit,tag:2"`
	}{Hash: sha256ID, MGF: struct {
		OID  asn1.ObjectIdentifier
		Hash algID
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}, sha256ID}, Salt: 32}})
	want := map[SigScheme][]byte{
		SigRSAPKCS1SHA256: rsa(11), SigRSAPKCS1SHA384: rsa(12), SigRSAPKCS1SHA512: rsa(13),
		SigRSAPSSSHA256: pss, SigECDSASHA256: ec(2), SigECDSASHA384: ec(3), SigECDSASHA512: ec(4),
	}
	for s, w := range want {
		if !bytes.Equal(s.AlgorithmIdentifier(), w) {
			t.Errorf("%s: got %x want %x", s, s.AlgorithmIdentifier(), w)
		}
	}
	// Appendix A.1.2 of RFC 7427, as printed there.
	if hex.EncodeToString(SigRSAPKCS1SHA256.AlgorithmIdentifier()) != "300d06092a864886f70d01010b0500" {
		t.Error("sha256WithRSAEncryption bytes")
	}
	if SigScheme(99).AlgorithmIdentifier() != nil || SigECDSASHA384.Hash() != message.HashSHA2_384 {
		t.Error("scheme helpers")
	}
}

func TestSignatures(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	signed := []byte("octets to sign")
	tests := []struct {
		name   string
		key    crypto.Signer
		method message.AuthMethod
		scheme SigScheme
	}{
		{"rsa method 1", rsaKey, message.AuthRSASig, 0},
		{"rsa pkcs1 sha256", rsaKey, message.AuthDigitalSignature, SigRSAPKCS1SHA256},
		{"rsa pkcs1 sha512", rsaKey, message.AuthDigitalSignature, SigRSAPKCS1SHA512},
		{"rsa pss", rsaKey, message.AuthDigitalSignature, SigRSAPSSSHA256},
		{"ecdsa method 9", p256, message.AuthECDSAP256, 0},
		{"ecdsa method 10", p384, message.AuthECDSAP384, 0},
		{"ecdsa p256 sha256", p256, message.AuthDigitalSignature, SigECDSASHA256},
		{"ecdsa p384 sha384", p384, message.AuthDigitalSignature, SigECDSASHA384},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Sign(tc.key, tc.method, tc.scheme, signed)
			if err != nil {
				t.Fatal(err)
			}
			pub := tc.key.Public()
			if s, err := Verify(pub, tc.method, signed, data); err != nil || s != tc.scheme {
				t.Fatalf("Verify: %s %v", s, err)
			}
			if tc.method == message.AuthECDSAP256 && len(data) != 64 || tc.method == message.AuthECDSAP384 && len(data) != 96 {
				t.Fatalf("RFC 4754 signature of %d bytes", len(data))
			}
			if tc.method == message.AuthDigitalSignature && !bytes.Equal(data[1:1+data[0]], tc.scheme.AlgorithmIdentifier()) {
				t.Fatal("AlgorithmIdentifier prefix")
			}
			if _, err := Verify(pub, tc.method, []byte("other octets"), data); err == nil {
				t.Fatal("signature over other octets verified")
			}
			bad := append([]byte{}, data...)
			bad[len(bad)-1] ^= 1
			if _, err := Verify(pub, tc.method, signed, bad); err == nil {
				t.Fatal("corrupted signature verified")
			}
			if _, err := Verify(pub, tc.method, signed, nil); err == nil {
				t.Fatal("empty AUTH data verified")
			}
		})
	}
	// key/method mismatches
	if _, err := Sign(p256, message.AuthRSASig, 0, signed); err == nil {
		t.Error("method 1 with ECDSA key")
	}
	if _, err := Sign(p384, message.AuthECDSAP256, 0, signed); err == nil {
		t.Error("method 9 with P-384 key")
	}
	if _, err := Sign(rsaKey, message.AuthDigitalSignature, SigECDSASHA256, signed); err == nil {
		t.Error("ECDSA scheme with RSA key")
	}
	if _, err := Sign(rsaKey, message.AuthPSK, 0, signed); err == nil {
		t.Error("PSK is not a signature method")
	}
	data, _ := Sign(rsaKey, message.AuthDigitalSignature, SigRSAPKCS1SHA256, signed)
	if _, err := Verify(&p256.PublicKey, message.AuthDigitalSignature, signed, data); err == nil {
		t.Error("RSA signature verified with ECDSA key")
	}
	if _, err := Verify(&rsaKey.PublicKey, message.AuthDigitalSignature, signed, []byte{200, 1}); err == nil {
		t.Error("truncated AlgorithmIdentifier accepted")
	}
}
