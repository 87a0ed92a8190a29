// Codec tests: round trips, a hand-written wire image, decode and encode
// error cases, header helpers and String methods.

package message_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	. "github.com/ovnsec/ovnsec/internal/ike/message"
)

// roundTrip encodes m, decodes the result and checks equality both ways.
func roundTrip(t *testing.T, m *Message) []byte {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if int(m.Length) != len(b) {
		t.Fatalf("Encode set Length %d, wrote %d bytes", m.Length, len(b))
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.Header != m.Header {
		t.Fatalf("header: got %+v, want %+v", got.Header, m.Header)
	}
	if !reflect.DeepEqual(got.Payloads, m.Payloads) {
		t.Fatalf("payloads differ:\n got %#v\nwant %#v", got.Payloads, m.Payloads)
	}
	b2, err := got.Encode(nil)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("re-encode differs (err %v)", err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for name, m := range samples() {
		t.Run(name, func(t *testing.T) { roundTrip(t, m) })
	}
}

// TestWireFormat checks a message against bytes written by hand from
// RFC 7296 §3: header, SA with one proposal/transform and KEY_LENGTH, a
// notify with SPI, and a TS payload.
func TestWireFormat(t *testing.T) {
	wire := strings.Join([]string{
		// header: SPIi, SPIr, next=SA(33), ver 2.0, IKE_SA_INIT, flags I, msgid 0, length
		"0102030405060708", "0000000000000000", "21", "20", "22", "08", "00000000", "00000058",
		// SA: next=N(41), crit 0, len 24; proposal: last, rsvd, len 20, num 1, IKE, spisize 0, 1 transform
		"29", "00", "0018", "00", "00", "0014", "01", "01", "00", "01",
		// transform: last, rsvd, len 12, ENCR, rsvd, id 20, attr AF|14 = 256
		"00", "00", "000c", "01", "00", "0014", "800e", "0100",
		// Notify: next=TSi(44), crit, len 12, proto ESP, spisize 4, REKEY_SA(16393), SPI
		"2c", "00", "000c", "03", "04", "4009", "c0ffee01",
		// TSi: next none, len 24, 1 TS, TS_IPV4_ADDR_RANGE, UDP, len 16, ports 6081, 10.0.0.1-10.0.0.2
		"00", "00", "0018", "01000000", "07", "11", "0010", "17c1", "17c1", "0a000001", "0a000002",
	}, "")
	b, err := hex.DecodeString(wire)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if m.Exchange != IKE_SA_INIT || m.Flags != FlagInitiator || m.SPIi != spiI || !m.SPIr.IsZero() {
		t.Fatalf("header %+v", m.Header)
	}
	sa := m.Find(PayloadSA).(*SA)
	tr := sa.Proposals[0].Transforms[0]
	if kl, ok := tr.KeyLength(); tr.Type != TransformENCR || EncrID(tr.ID) != ENCR_AES_GCM_16 || !ok || kl != 256 {
		t.Fatalf("transform %v", tr)
	}
	n := m.Find(PayloadNotify).(*Notify)
	if n.NotifyType != REKEY_SA || n.Protocol != ProtoESP || !bytes.Equal(n.SPI, []byte{0xc0, 0xff, 0xee, 1}) {
		t.Fatalf("notify %+v", n)
	}
	ts := m.Find(PayloadTSi).(*TrafficSelectors)
	if s := ts.Selectors[0].String(); s != "10.0.0.1-10.0.0.2 proto 17 ports 6081-6081" {
		t.Fatalf("selector %s", s)
	}
	out, err := m.Encode(nil)
	if err != nil || !bytes.Equal(out, b) {
		t.Fatalf("re-encode:\n got %x\nwant %x (err %v)", out, b, err)
	}
}

func TestEncodeAppends(t *testing.T) {
	m := initRequest()
	prefix := []byte("prefix")
	b, err := m.Encode(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, prefix) || len(b) != len(prefix)+int(m.Length) {
		t.Fatalf("Encode did not append")
	}
	if _, err := Decode(b[len(prefix):]); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	b, _ := initRequest().Encode(nil)
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xff
	}
	if !bytes.Equal(m.Find(PayloadNonce).(*Nonce).Data, bytes.Repeat([]byte{0x11}, 32)) {
		t.Fatal("decoded payload changed with the input buffer")
	}
}

// mutate encodes m and lets f corrupt the bytes (length fixed afterwards
// unless f changes it).
func mutate(t *testing.T, m *Message, f func(b []byte) []byte) []byte {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	b = f(b)
	return b
}

func setLen(b []byte) []byte {
	binary.BigEndian.PutUint32(b[24:28], uint32(len(b)))
	return b
}

func TestDecodeErrors(t *testing.T) {
	one := func(p Payload) *Message {
		return &Message{Header: Header{SPIi: spiI, Exchange: INFORMATIONAL}, Payloads: []Payload{p}}
	}
	// offset of the first payload's body
	const body = HeaderLen + PayloadHeaderLen
	tests := []struct {
		name     string
		b        []byte
		syntax   bool
		critical PayloadType
		version  bool
	}{
		{name: "empty", b: nil, syntax: true},
		{name: "short header", b: make([]byte, 27), syntax: true},
		{name: "ikev1", b: mutate(t, one(&Nonce{}), func(b []byte) []byte { b[17] = 0x10; return b }), version: true},
		{name: "ikev3", b: mutate(t, one(&Nonce{}), func(b []byte) []byte { b[17] = 0x30; return b }), version: true},
		{name: "length beyond datagram", b: mutate(t, one(&Nonce{}), func(b []byte) []byte { return b[:len(b)-1] }), syntax: true},
		{name: "trailing garbage", b: mutate(t, one(&Nonce{}), func(b []byte) []byte { return setLen(append(b, 0)) }), syntax: true},
		{name: "datagram longer than length", b: mutate(t, one(&Nonce{}), func(b []byte) []byte { return append(b, 0) }), syntax: true},
		{name: "payload length below 4", b: mutate(t, one(&Nonce{Data: []byte{1}}), func(b []byte) []byte { b[HeaderLen+3] = 3; return b }), syntax: true},
		{name: "payload length too long", b: mutate(t, one(&Nonce{Data: []byte{1}}), func(b []byte) []byte { b[HeaderLen+3] = 9; return b }), syntax: true},
		{name: "missing next payload", b: mutate(t, one(&Nonce{}), func(b []byte) []byte { b[HeaderLen] = byte(PayloadNonce); return b }), syntax: true},
		{name: "unknown critical", b: mutate(t, one(&Opaque{Kind: 222, Critical: true}), func(b []byte) []byte { return b }), critical: 222},
		{name: "KE short", b: mutate(t, one(&Opaque{Kind: PayloadKE, Data: []byte{0, 14}}), func(b []byte) []byte { return b }), syntax: true},
		{name: "ID short", b: mutate(t, one(&Opaque{Kind: PayloadIDi, Data: []byte{1}}), func(b []byte) []byte { return b }), syntax: true},
		{name: "AUTH short", b: mutate(t, one(&Opaque{Kind: PayloadAUTH, Data: []byte{2}}), func(b []byte) []byte { return b }), syntax: true},
		{name: "CERT empty", b: mutate(t, one(&Opaque{Kind: PayloadCERT}), func(b []byte) []byte { return b }), syntax: true},
		{name: "notify SPI overflow", b: mutate(t, one(&Notify{SPI: []byte{1, 2}}), func(b []byte) []byte { b[body+1] = 3; return b }), syntax: true},
		{name: "delete count mismatch", b: mutate(t, one(&Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}}}), func(b []byte) []byte { b[body+3] = 2; return b }), syntax: true},
		{name: "delete size 0 with SPIs", b: mutate(t, one(&Delete{Protocol: ProtoIKE}), func(b []byte) []byte { b[body+3] = 1; return b }), syntax: true},
		{name: "SA proposal truncated", b: mutate(t, one(&Opaque{Kind: PayloadSA, Data: []byte{0, 0, 0, 8, 1}}), func(b []byte) []byte { return b }), syntax: true},
		{name: "SA last flag with more", b: mutate(t, one(&SA{Proposals: ikeProposal().Proposals}), func(b []byte) []byte { b[body] = 0; return b }), syntax: true},
		{name: "SA more flag at end", b: mutate(t, one(&SA{Proposals: ikeProposal().Proposals[:1]}), func(b []byte) []byte { b[body] = 2; return b }), syntax: true},
		{name: "SA bad transform count", b: mutate(t, one(&SA{Proposals: ikeProposal().Proposals[:1]}), func(b []byte) []byte { b[body+7] = 2; return b }), syntax: true},
		{name: "SA transform flag", b: mutate(t, one(&SA{Proposals: ikeProposal().Proposals[:1]}), func(b []byte) []byte { b[body+8] = 0; return b }), syntax: true},
		{name: "SA attribute overflow", b: mutate(t, one(&SA{Proposals: []Proposal{{Num: 1, Transforms: []Transform{{Attributes: []Attribute{{Type: 5, TLV: true, Data: []byte{1}}}}}}}}), func(b []byte) []byte { b[body+8+8+3] = 9; return b }), syntax: true},
		{name: "TS count too high", b: mutate(t, one(authInner()[10]), func(b []byte) []byte { b[body] = 2; return b }), syntax: true},
		{name: "TS v4 bad length", b: mutate(t, one(&Opaque{Kind: PayloadTSi, Data: []byte{1, 0, 0, 0, 7, 0, 0, 8, 0, 0, 0, 0}}), func(b []byte) []byte { return b }), syntax: true},
		{name: "SK not last", b: mutate(t, one(&Encrypted{Body: []byte{1}}), func(b []byte) []byte {
			return setLen(append(b, 0, 0, 0, 4))
		}), syntax: true},
		{name: "SKF fragment zero", b: mutate(t, one(&EncryptedFragment{Number: 1, Total: 1}), func(b []byte) []byte { b[body+1] = 0; return b }), syntax: true},
		{name: "SKF number above total", b: mutate(t, one(&EncryptedFragment{Number: 2, Total: 1}), func(b []byte) []byte { return b }), syntax: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.b)
			if err == nil {
				t.Fatalf("Decode succeeded: %+v", m)
			}
			var ce *CriticalPayloadError
			var ve *VersionError
			switch {
			case tc.syntax:
				if !errors.Is(err, ErrInvalidSyntax) {
					t.Fatalf("err %v, want invalid syntax", err)
				}
				if n, _ := NotifyFor(err); n != INVALID_SYNTAX {
					t.Fatalf("NotifyFor = %s", n)
				}
			case tc.critical != 0:
				if !errors.As(err, &ce) || ce.Type != tc.critical {
					t.Fatalf("err %v, want critical %d", err, tc.critical)
				}
				if n, d := NotifyFor(err); n != UNSUPPORTED_CRITICAL_PAYLOAD || !bytes.Equal(d, []byte{byte(tc.critical)}) {
					t.Fatalf("NotifyFor = %s %x", n, d)
				}
			case tc.version:
				if !errors.As(err, &ve) {
					t.Fatalf("err %v, want version error", err)
				}
				if n, _ := NotifyFor(err); n != INVALID_MAJOR_VERSION {
					t.Fatalf("NotifyFor = %s", n)
				}
			}
		})
	}
}

func TestUnknownNonCriticalKept(t *testing.T) {
	m := &Message{Header: Header{Exchange: INFORMATIONAL}, Payloads: []Payload{
		&Opaque{Kind: 250, Data: []byte{1}}, &Nonce{Data: []byte{2}},
	}}
	b := roundTrip(t, m)
	got, _ := Decode(b)
	if got.Find(PayloadNonce) == nil || got.Find(250).(*Opaque).Critical {
		t.Fatal("unknown payload not skipped")
	}
}

func TestKnownPayloadCriticalBitIgnored(t *testing.T) {
	b, _ := (&Message{Payloads: []Payload{&Nonce{Data: []byte{1}}}}).Encode(nil)
	b[HeaderLen+1] = 0x80
	m, err := Decode(b)
	if err != nil {
		t.Fatalf("critical bit on a known payload: %v", err)
	}
	if _, ok := m.Payloads[0].(*Nonce); !ok {
		t.Fatalf("got %T", m.Payloads[0])
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		ps   []Payload
	}{
		{"nil payload", []Payload{nil}},
		{"SK not last", []Payload{&Encrypted{}, &Nonce{}}},
		{"payload too big", []Payload{&Nonce{Data: make([]byte, 70000)}}},
		{"delete SPI size", []Payload{&Delete{SPISize: 4, SPIs: [][]byte{{1}}}}},
		{"delete SPIs without size", []Payload{&Delete{SPIs: [][]byte{{}}}}},
		{"notify SPI too long", []Payload{&Notify{SPI: make([]byte, 256)}}},
		{"TS v4 with v6", []Payload{&TrafficSelectors{Selectors: []Selector{{Type: TS_IPV4_ADDR_RANGE, Start: netipv6, End: netipv6}}}}},
		{"TS v6 with v4", []Payload{&TrafficSelectors{Selectors: []Selector{{Type: TS_IPV6_ADDR_RANGE, Start: netipv4, End: netipv4}}}}},
		{"TS unknown with addr", []Payload{&TrafficSelectors{Selectors: []Selector{{Type: 9, Start: netipv4}}}}},
		{"TV attr with data", []Payload{&SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: []Attribute{{Type: 14, Data: []byte{1}}}}}}}}}},
		{"attr format bit", []Payload{&SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: []Attribute{{Type: 0x800e}}}}}}}}},
		{"too many transforms", []Payload{&SA{Proposals: []Proposal{{Transforms: make([]Transform, 256)}}}}},
		{"opaque none", []Payload{&Opaque{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Message{Payloads: tc.ps}
			if b, err := m.Encode([]byte{}); err == nil {
				t.Fatalf("Encode succeeded: %x", b)
			}
		})
	}
}

func TestDecodePayloadsRejectsNestedSK(t *testing.T) {
	b, err := EncodePayloads(nil, []Payload{&Nonce{Data: []byte{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EncodePayloads(nil, []Payload{&Encrypted{}}); err == nil {
		t.Fatal("EncodePayloads accepted an SK payload")
	}
	ps, err := DecodePayloads(PayloadNonce, b)
	if err != nil || len(ps) != 1 {
		t.Fatalf("DecodePayloads: %v %v", ps, err)
	}
	if _, err := DecodePayloads(PayloadSK, []byte{0, 0, 0, 4}); !errors.Is(err, ErrInvalidSyntax) {
		t.Fatalf("nested SK: %v", err)
	}
}

func TestParseHeader(t *testing.T) {
	b, _ := initRequest().Encode(nil)
	h, err := ParseHeader(append(b, 0, 0)) // datagram may carry more
	if err != nil || h.Length != uint32(len(b)) || !h.IsInitiator() || h.IsResponse() {
		t.Fatalf("ParseHeader %+v %v", h, err)
	}
	if got, ok := StripNonESPMarker(append([]byte{0, 0, 0, 0}, b...)); !ok || !bytes.Equal(got, b) {
		t.Fatal("non-ESP marker not stripped")
	}
	if _, ok := StripNonESPMarker([]byte{0, 0, 0, 1, 5}); ok {
		t.Fatal("ESP packet taken for IKE")
	}
}

func TestNotifyHelpers(t *testing.T) {
	hs, err := ParseHashAlgorithms(HashAlgorithmsData(HashSHA2_256, HashSHA2_512))
	if err != nil || !reflect.DeepEqual(hs, []HashAlgorithm{HashSHA2_256, HashSHA2_512}) {
		t.Fatalf("hash algorithms %v %v", hs, err)
	}
	if _, err := ParseHashAlgorithms([]byte{1}); err == nil {
		t.Fatal("odd hash list accepted")
	}
	if g, err := ParseInvalidKE(InvalidKEData(CURVE_25519)); err != nil || g != CURVE_25519 {
		t.Fatalf("invalid KE %v %v", g, err)
	}
	if _, err := ParseInvalidKE([]byte{1}); err == nil {
		t.Fatal("short INVALID_KE data accepted")
	}
	m := initRequest()
	if n := Notifies(m.Payloads, NAT_DETECTION_SOURCE_IP); len(n) != 1 {
		t.Fatalf("Notifies found %d", len(n))
	}
	if m.Find(PayloadCERT) != nil {
		t.Fatal("Find invented a payload")
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got  interface{ String() string }
		want string
	}{
		{IKE_AUTH, "IKE_AUTH"}, {ExchangeType(99), "EXCHANGE(99)"},
		{FlagInitiator | FlagResponse, "IR"}, {Flags(0), "-"}, {Flags(0x81), "+0x81"},
		{PayloadSKF, "SKF"}, {PayloadType(1), "PAYLOAD(1)"},
		{ProtoESP, "ESP"}, {TransformDH, "DH"}, {ENCR_AES_GCM_16, "AES_GCM_16"},
		{PRF_HMAC_SHA2_384, "PRF_HMAC_SHA2_384"}, {AUTH_NONE, "NONE"}, {CURVE_25519, "CURVE_25519"},
		{ESNOn, "ESN"}, {AttrKeyLength, "KEY_LENGTH"}, {ID_FQDN, "ID_FQDN"}, {CertX509Signature, "X509_SIGNATURE"},
		{AuthDigitalSignature, "DIGITAL_SIGNATURE"}, {HashSHA2_256, "SHA2_256"}, {TS_IPV6_ADDR_RANGE, "TS_IPV6_ADDR_RANGE"},
		{INVALID_KE_PAYLOAD, "INVALID_KE_PAYLOAD"}, {IKEV2_FRAGMENTATION_SUPPORTED, "IKEV2_FRAGMENTATION_SUPPORTED"},
		{NotifyType(40000), "NOTIFY(40000)"}, {SPI{0xde, 0xad}, "dead000000000000"},
		{Transform{Type: TransformENCR, ID: 20, Attributes: KeyLengthAttr(256)}, "ENCR:AES_GCM_16_256"},
	}
	for _, tc := range tests {
		if s := tc.got.String(); s != tc.want {
			t.Errorf("String() = %q, want %q", s, tc.want)
		}
	}
	if !AUTHENTICATION_FAILED.IsError() || INITIAL_CONTACT.IsError() {
		t.Error("IsError")
	}
}
