// Hand-built messages of every payload kind, shared by the unit tests, the
// benchmarks and the fuzz seed corpus.

package message_test

import (
	"bytes"
	"net/netip"

	. "github.com/ovnsec/ovnsec/internal/ike/message"
)

var (
	spiI = SPI{1, 2, 3, 4, 5, 6, 7, 8}
	spiR = SPI{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x10, 0x11}
)

func ikeProposal() SA {
	return SA{Proposals: []Proposal{{
		Num: 1, Protocol: ProtoIKE,
		Transforms: []Transform{
			{Type: TransformENCR, ID: uint16(ENCR_AES_GCM_16), Attributes: KeyLengthAttr(256)},
			{Type: TransformPRF, ID: uint16(PRF_HMAC_SHA2_256)},
			{Type: TransformDH, ID: uint16(MODP_2048)},
		},
	}, {
		Num: 2, Protocol: ProtoIKE,
		Transforms: []Transform{
			{Type: TransformENCR, ID: uint16(ENCR_AES_GCM_16), Attributes: KeyLengthAttr(128)},
			{Type: TransformPRF, ID: uint16(PRF_HMAC_SHA2_512)},
			{Type: TransformDH, ID: uint16(CURVE_25519)},
			{Type: TransformDH, ID: uint16(ECP_256)},
		},
	}}}
}

func espProposal() SA {
	return SA{Proposals: []Proposal{{
		Num: 1, Protocol: ProtoESP, SPI: []byte{0xc0, 0xff, 0xee, 0x01},
		Transforms: []Transform{
			{Type: TransformENCR, ID: uint16(ENCR_AES_GCM_16), Attributes: KeyLengthAttr(256)},
			{Type: TransformESN, ID: uint16(ESNOff)},
		},
	}}}
}

// initRequest is an IKE_SA_INIT request with SA, KE, Nonce, notifications
// and a vendor ID.
func initRequest() *Message {
	sa := ikeProposal()
	return &Message{
		Header: Header{SPIi: spiI, Exchange: IKE_SA_INIT, Flags: FlagInitiator},
		Payloads: []Payload{
			&sa,
			&KE{Group: MODP_2048, Data: bytes.Repeat([]byte{0x5a}, 256)},
			&Nonce{Data: bytes.Repeat([]byte{0x11}, 32)},
			&Notify{NotifyType: NAT_DETECTION_SOURCE_IP, Data: bytes.Repeat([]byte{1}, 20)},
			&Notify{NotifyType: NAT_DETECTION_DESTINATION_IP, Data: bytes.Repeat([]byte{2}, 20)},
			&Notify{NotifyType: IKEV2_FRAGMENTATION_SUPPORTED},
			&Notify{NotifyType: SIGNATURE_HASH_ALGORITHMS, Data: HashAlgorithmsData(HashSHA2_256, HashSHA2_384, HashSHA2_512)},
			&VendorID{Data: []byte("ovnsec")},
		},
	}
}

// authInner is the protected content of an IKE_AUTH request of typical
// size (a 1 KiB certificate).
func authInner() []Payload {
	sa := espProposal()
	return []Payload{
		&ID{IDType: ID_DER_ASN1_DN, Data: []byte("0\x1f1\x1d0\x1b\x06\x03U\x04\x03\x0c\x14chassis-1.example.org")},
		&Cert{Encoding: CertX509Signature, Data: bytes.Repeat([]byte{0x30}, 1024)},
		&CertReq{Encoding: CertX509Signature, Data: bytes.Repeat([]byte{0x99}, 20)},
		&Notify{NotifyType: INITIAL_CONTACT},
		&ID{Responder: true, IDType: ID_FQDN, Data: []byte("chassis-2")},
		&Auth{Method: AuthDigitalSignature, Data: append([]byte{12, 0x30, 0x0a}, bytes.Repeat([]byte{7}, 80)...)},
		&Notify{NotifyType: USE_TRANSPORT_MODE},
		&Notify{NotifyType: ESP_TFC_PADDING_NOT_SUPPORTED},
		&Notify{NotifyType: NON_FIRST_FRAGMENTS_ALSO},
		&sa,
		&TrafficSelectors{Selectors: []Selector{{
			Type: TS_IPV4_ADDR_RANGE, IPProtocol: 17, StartPort: 6081, EndPort: 6081,
			Start: netip.MustParseAddr("192.0.2.1"), End: netip.MustParseAddr("192.0.2.1"),
		}}},
		&TrafficSelectors{Responder: true, Selectors: []Selector{{
			Type: TS_IPV4_ADDR_RANGE, IPProtocol: 17, StartPort: 0, EndPort: 65535,
			Start: netip.MustParseAddr("192.0.2.2"), End: netip.MustParseAddr("192.0.2.2"),
		}, {
			Type: TS_IPV6_ADDR_RANGE, IPProtocol: 0, StartPort: 0, EndPort: 65535,
			Start: netip.MustParseAddr("2001:db8::"), End: netip.MustParseAddr("2001:db8::ffff"),
		}}},
	}
}

// samples are cleartext messages covering every payload kind.
func samples() map[string]*Message {
	child := espProposal()
	return map[string]*Message{
		"init-request": initRequest(),
		"init-response-cookie": {
			Header:   Header{SPIi: spiI, Exchange: IKE_SA_INIT, Flags: FlagResponse},
			Payloads: []Payload{&Notify{NotifyType: COOKIE, Data: []byte("0123456789abcdef")}},
		},
		"init-response-invalid-ke": {
			Header:   Header{SPIi: spiI, Exchange: IKE_SA_INIT, Flags: FlagResponse},
			Payloads: []Payload{&Notify{NotifyType: INVALID_KE_PAYLOAD, Data: InvalidKEData(ECP_256)}},
		},
		"auth-inner-in-clear": {
			Header:   Header{SPIi: spiI, SPIr: spiR, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1},
			Payloads: authInner(),
		},
		"create-child-rekey": {
			Header: Header{SPIi: spiI, SPIr: spiR, Exchange: CREATE_CHILD_SA, Flags: FlagInitiator, MessageID: 7},
			Payloads: []Payload{
				&Notify{Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, NotifyType: REKEY_SA},
				&child,
				&Nonce{Data: bytes.Repeat([]byte{3}, 32)},
				&KE{Group: CURVE_25519, Data: bytes.Repeat([]byte{9}, 32)},
			},
		},
		"informational-delete": {
			Header: Header{SPIi: spiI, SPIr: spiR, Exchange: INFORMATIONAL, Flags: FlagResponse, MessageID: 9},
			Payloads: []Payload{
				&Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}},
				&Delete{Protocol: ProtoIKE},
				&Delete{Protocol: ProtoESP, SPISize: 4},
			},
		},
		"empty-informational": {
			Header: Header{SPIi: spiI, SPIr: spiR, Exchange: INFORMATIONAL, MessageID: 3},
		},
		"opaque-and-attributes": {
			Header: Header{SPIi: spiI, SPIr: spiR, Exchange: IKE_AUTH, Flags: FlagInitiator | FlagVersion, MessageID: 2},
			Payloads: []Payload{
				&Opaque{Kind: PayloadCP, Critical: true, Data: []byte{1, 0, 0, 0}},
				&Opaque{Kind: 200, Data: []byte("skip me")},
				&SA{Proposals: []Proposal{{Num: 1, Protocol: ProtoIKE, SPI: spiR[:], Transforms: []Transform{{
					Type: TransformENCR, ID: 20,
					Attributes: []Attribute{{Type: AttrKeyLength, Value: 128}, {Type: 99, TLV: true, Data: []byte{1, 2, 3}}, {Type: 98, TLV: true}},
				}}}}},
				&TrafficSelectors{Selectors: []Selector{{Type: 9, StartPort: 1, EndPort: 2, Data: []byte("fc-range")}}},
			},
		},
		"encrypted-raw": {
			Header: Header{SPIi: spiI, SPIr: spiR, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1},
			Payloads: []Payload{
				&Encrypted{NextPayload: PayloadIDi, Body: bytes.Repeat([]byte{0xee}, 64)},
			},
		},
		"fragment-raw": {
			Header: Header{SPIi: spiI, SPIr: spiR, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1},
			Payloads: []Payload{
				&EncryptedFragment{NextPayload: PayloadIDi, Number: 1, Total: 3, Body: bytes.Repeat([]byte{0xdd}, 40)},
			},
		},
	}
}

var (
	netipv4 = netip.MustParseAddr("192.0.2.9")
	netipv6 = netip.MustParseAddr("2001:db8::9")
)
