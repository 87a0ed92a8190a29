// Typed payloads (RFC 7296 §3.2–3.16) and their wire encoding; SA and traffic
// selector payloads live in sa.go and ts.go.

package message

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Payload is one IKE payload. The concrete types are *SA, *KE, *ID, *Cert,
// *CertReq, *Auth, *Nonce, *Notify, *Delete, *VendorID, *TrafficSelectors,
// *Encrypted, *EncryptedFragment and *Opaque.
type Payload interface {
	// Type is the payload type announced in the preceding Next Payload field.
	Type() PayloadType
	// bodyLen validates the payload and returns the length of its body (the
	// payload without the generic header).
	bodyLen() (int, error)
	// putBody writes the body into b, which has exactly bodyLen bytes.
	putBody(b []byte)
}

// KE is the Key Exchange payload (RFC 7296 §3.4).
type KE struct {
	Group DHGroup
	Data  []byte // DH public value
}

// ID is the IDi or IDr payload (RFC 7296 §3.5).
type ID struct {
	Responder bool // IDr if set, IDi otherwise
	IDType    IDType
	Data      []byte
}

// Cert is the Certificate payload (RFC 7296 §3.6).
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

// CertReq is the Certificate Request payload (RFC 7296 §3.7). For X.509
// certificates Data is a concatenation of SHA-1 hashes of the trusted CAs'
// SubjectPublicKeyInfo.
type CertReq struct {
	Encoding CertEncoding
	Data     []byte
}

// Auth is the Authentication payload (RFC 7296 §3.8).
type Auth struct {
	Method AuthMethod
	Data   []byte
}

// Nonce is the Nonce payload (RFC 7296 §3.9). The codec does not enforce the
// 16..256 octet size rule; the exchange logic does.
type Nonce struct {
	Data []byte
}

// Notify is the Notify payload (RFC 7296 §3.10).
type Notify struct {
	Protocol   ProtocolID // ProtoNone unless SPI names an SA
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

// Delete is the Delete payload (RFC 7296 §3.11). Deleting the IKE SA uses
// Protocol ProtoIKE, SPISize 0 and no SPIs; ESP SAs use SPISize 4.
type Delete struct {
	Protocol ProtocolID
	SPISize  uint8
	SPIs     [][]byte // each exactly SPISize bytes
}

// VendorID is the Vendor ID payload (RFC 7296 §3.12).
type VendorID struct {
	Data []byte
}

// Encrypted is the Encrypted and Authenticated (SK) payload (RFC 7296 §3.14)
// as it appears on the wire. It is always the last payload; NextPayload is the
// type of the first inner payload. Body is IV | ciphertext | ICV. Use
// Message.Open/Decrypt to read it and Message.EncodeSK to build it.
type Encrypted struct {
	NextPayload PayloadType
	Body        []byte
}

// EncryptedFragment is the Encrypted Fragment (SKF) payload (RFC 7383 §2.5).
// NextPayload is the first inner payload type in fragment 1 and NONE in the
// others. Body is IV | ciphertext | ICV.
type EncryptedFragment struct {
	NextPayload PayloadType
	Number      uint16 // 1-based
	Total       uint16
	Body        []byte
}

// Opaque is a payload carried as raw bytes: a type ovnsec does not interpret
// (CP, EAP, GSPM) or an unknown type without the critical bit, which a
// receiver must skip (RFC 7296 §2.5).
type Opaque struct {
	Kind     PayloadType
	Critical bool
	Data     []byte
}

func (*KE) Type() PayloadType       { return PayloadKE }
func (*Cert) Type() PayloadType     { return PayloadCERT }
func (*CertReq) Type() PayloadType  { return PayloadCERTREQ }
func (*Auth) Type() PayloadType     { return PayloadAUTH }
func (*Nonce) Type() PayloadType    { return PayloadNonce }
func (*Notify) Type() PayloadType   { return PayloadNotify }
func (*Delete) Type() PayloadType   { return PayloadDelete }
func (*VendorID) Type() PayloadType { return PayloadVendorID }
func (*Encrypted) Type() PayloadType {
	return PayloadSK
}
func (*EncryptedFragment) Type() PayloadType { return PayloadSKF }
func (o *Opaque) Type() PayloadType          { return o.Kind }

func (p *ID) Type() PayloadType {
	if p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

// maxBody is the largest payload body that fits the 16-bit length field.
const maxBody = math.MaxUint16 - PayloadHeaderLen

func (p *KE) bodyLen() (int, error)       { return 4 + len(p.Data), nil }
func (p *ID) bodyLen() (int, error)       { return 4 + len(p.Data), nil }
func (p *Cert) bodyLen() (int, error)     { return 1 + len(p.Data), nil }
func (p *CertReq) bodyLen() (int, error)  { return 1 + len(p.Data), nil }
func (p *Auth) bodyLen() (int, error)     { return 4 + len(p.Data), nil }
func (p *Nonce) bodyLen() (int, error)    { return len(p.Data), nil }
func (p *VendorID) bodyLen() (int, error) { return len(p.Data), nil }
func (p *Encrypted) bodyLen() (int, error) {
	return len(p.Body), nil
}
func (p *EncryptedFragment) bodyLen() (int, error) { return 4 + len(p.Body), nil }

func (p *Opaque) bodyLen() (int, error) {
	if p.Kind == PayloadNone || p.Kind == PayloadSK || p.Kind == PayloadSKF {
		return 0, fmt.Errorf("ike message: opaque payload cannot have type %s", p.Kind)
	}
	return len(p.Data), nil
}

func (p *Notify) bodyLen() (int, error) {
	if len(p.SPI) > math.MaxUint8 {
		return 0, fmt.Errorf("ike message: notify %s: SPI of %d bytes is too long", p.NotifyType, len(p.SPI))
	}
	return 4 + len(p.SPI) + len(p.Data), nil
}

func (p *Delete) bodyLen() (int, error) {
	if len(p.SPIs) > math.MaxUint16 {
		return 0, fmt.Errorf("ike message: delete: %d SPIs is too many", len(p.SPIs))
	}
	if p.SPISize == 0 && len(p.SPIs) != 0 {
		return 0, fmt.Errorf("ike message: delete: SPIs given with SPI size 0")
	}
	for _, s := range p.SPIs {
		if len(s) != int(p.SPISize) {
			return 0, fmt.Errorf("ike message: delete: SPI of %d bytes, want %d", len(s), p.SPISize)
		}
	}
	return 4 + len(p.SPIs)*int(p.SPISize), nil
}

func (p *KE) putBody(b []byte) {
	binary.BigEndian.PutUint16(b, uint16(p.Group))
	b[2], b[3] = 0, 0
	copy(b[4:], p.Data)
}

func (p *ID) putBody(b []byte) {
	b[0], b[1], b[2], b[3] = byte(p.IDType), 0, 0, 0
	copy(b[4:], p.Data)
}

// Body returns the ID payload body (ID type, three reserved octets, data):
// the IDx' that AUTH computations cover (RFC 7296 §2.15).
func (p *ID) Body() []byte {
	b := make([]byte, 4+len(p.Data))
	p.putBody(b)
	return b
}

func (p *Cert) putBody(b []byte) {
	b[0] = byte(p.Encoding)
	copy(b[1:], p.Data)
}

func (p *CertReq) putBody(b []byte) {
	b[0] = byte(p.Encoding)
	copy(b[1:], p.Data)
}

func (p *Auth) putBody(b []byte) {
	b[0], b[1], b[2], b[3] = byte(p.Method), 0, 0, 0
	copy(b[4:], p.Data)
}

func (p *Nonce) putBody(b []byte)     { copy(b, p.Data) }
func (p *VendorID) putBody(b []byte)  { copy(b, p.Data) }
func (p *Encrypted) putBody(b []byte) { copy(b, p.Body) }
func (p *Opaque) putBody(b []byte)    { copy(b, p.Data) }

func (p *EncryptedFragment) putBody(b []byte) {
	binary.BigEndian.PutUint16(b[0:2], p.Number)
	binary.BigEndian.PutUint16(b[2:4], p.Total)
	copy(b[4:], p.Body)
}

func (p *Notify) putBody(b []byte) {
	b[0] = byte(p.Protocol)
	b[1] = byte(len(p.SPI))
	binary.BigEndian.PutUint16(b[2:4], uint16(p.NotifyType))
	n := copy(b[4:], p.SPI)
	copy(b[4+n:], p.Data)
}

func (p *Delete) putBody(b []byte) {
	b[0] = byte(p.Protocol)
	b[1] = p.SPISize
	binary.BigEndian.PutUint16(b[2:4], uint16(len(p.SPIs)))
	off := 4
	for _, s := range p.SPIs {
		off += copy(b[off:], s)
	}
}

// rest returns b as a field value: nil when empty, capacity clipped so that
// appending to it never overwrites the neighbouring bytes.
func rest(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}

// decodeBody decodes the body of one payload of type t. Unknown types are
// returned as *Opaque (or a CriticalPayloadError if critical).
func decodeBody(t PayloadType, critical bool, b []byte) (Payload, error) {
	switch t {
	case PayloadSA:
		return decodeSA(b)
	case PayloadKE:
		if len(b) < 4 {
			return nil, syntaxErr("KE payload body of %d bytes is too short", len(b))
		}
		return &KE{Group: DHGroup(binary.BigEndian.Uint16(b)), Data: rest(b[4:])}, nil
	case PayloadIDi, PayloadIDr:
		if len(b) < 4 {
			return nil, syntaxErr("%s payload body of %d bytes is too short", t, len(b))
		}
		return &ID{Responder: t == PayloadIDr, IDType: IDType(b[0]), Data: rest(b[4:])}, nil
	case PayloadCERT:
		if len(b) < 1 {
			return nil, syntaxErr("CERT payload is empty")
		}
		return &Cert{Encoding: CertEncoding(b[0]), Data: rest(b[1:])}, nil
	case PayloadCERTREQ:
		if len(b) < 1 {
			return nil, syntaxErr("CERTREQ payload is empty")
		}
		return &CertReq{Encoding: CertEncoding(b[0]), Data: rest(b[1:])}, nil
	case PayloadAUTH:
		if len(b) < 4 {
			return nil, syntaxErr("AUTH payload body of %d bytes is too short", len(b))
		}
		return &Auth{Method: AuthMethod(b[0]), Data: rest(b[4:])}, nil
	case PayloadNonce:
		return &Nonce{Data: rest(b)}, nil
	case PayloadNotify:
		if len(b) < 4 {
			return nil, syntaxErr("notify payload body of %d bytes is too short", len(b))
		}
		n := int(b[1])
		if 4+n > len(b) {
			return nil, syntaxErr("notify SPI size %d exceeds the %d-byte payload", n, len(b))
		}
		return &Notify{
			Protocol:   ProtocolID(b[0]),
			NotifyType: NotifyType(binary.BigEndian.Uint16(b[2:4])),
			SPI:        rest(b[4 : 4+n]),
			Data:       rest(b[4+n:]),
		}, nil
	case PayloadDelete:
		return decodeDelete(b)
	case PayloadVendorID:
		return &VendorID{Data: rest(b)}, nil
	case PayloadTSi, PayloadTSr:
		return decodeTS(t, b)
	case PayloadSKF:
		if len(b) < 4 {
			return nil, syntaxErr("SKF payload body of %d bytes is too short", len(b))
		}
		f := &EncryptedFragment{
			Number: binary.BigEndian.Uint16(b[0:2]),
			Total:  binary.BigEndian.Uint16(b[2:4]),
			Body:   rest(b[4:]),
		}
		if f.Number == 0 || f.Total == 0 || f.Number > f.Total {
			return nil, syntaxErr("SKF fragment %d of %d", f.Number, f.Total)
		}
		return f, nil
	case PayloadSK:
		return &Encrypted{Body: rest(b)}, nil
	}
	if !t.known() && critical {
		return nil, &CriticalPayloadError{Type: t}
	}
	return &Opaque{Kind: t, Critical: critical, Data: rest(b)}, nil
}

func decodeDelete(b []byte) (Payload, error) {
	if len(b) < 4 {
		return nil, syntaxErr("delete payload body of %d bytes is too short", len(b))
	}
	d := &Delete{Protocol: ProtocolID(b[0]), SPISize: b[1]}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	size := int(d.SPISize)
	if size == 0 {
		if n != 0 || len(b) != 4 {
			return nil, syntaxErr("delete payload with SPI size 0 lists %d SPIs in %d bytes", n, len(b)-4)
		}
		return d, nil
	}
	if n*size != len(b)-4 {
		return nil, syntaxErr("delete payload: %d SPIs of %d bytes do not fill %d bytes", n, size, len(b)-4)
	}
	if n == 0 {
		return d, nil
	}
	d.SPIs = make([][]byte, n)
	for i := range d.SPIs {
		off := 4 + i*size
		d.SPIs[i] = b[off : off+size : off+size]
	}
	return d, nil
}
