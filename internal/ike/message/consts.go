// Protocol constants of IKEv2 (RFC 7296 and the extensions ovnsec speaks),
// with String methods so logs show names instead of numbers.

package message

import "strconv"

// UDP ports and framing (RFC 7296 §2.23, RFC 3948 §2.2).
const (
	PortIKE  = 500  // IKE without NAT traversal
	PortNATT = 4500 // IKE and ESP-in-UDP after NAT detection

	// NonESPMarkerLen is the length of the four zero octets that prefix an
	// IKE message sent on port 4500, distinguishing it from ESP-in-UDP.
	NonESPMarkerLen = 4

	// HeaderLen is the length of the fixed IKE header.
	HeaderLen = 28
	// PayloadHeaderLen is the length of the generic payload header.
	PayloadHeaderLen = 4

	// Version is the only version ovnsec speaks: major 2, minor 0.
	Version      = 0x20
	MajorVersion = 2
)

// ExchangeType identifies the exchange a message belongs to.
type ExchangeType uint8

// Exchange types (RFC 7296 §3.1, RFC 9242).
const (
	IKE_SA_INIT        ExchangeType = 34
	IKE_AUTH           ExchangeType = 35
	CREATE_CHILD_SA    ExchangeType = 36
	INFORMATIONAL      ExchangeType = 37
	IKE_SESSION_RESUME ExchangeType = 38
	IKE_INTERMEDIATE   ExchangeType = 43
)

func (e ExchangeType) String() string {
	switch e {
	case IKE_SA_INIT:
		return "IKE_SA_INIT"
	case IKE_AUTH:
		return "IKE_AUTH"
	case CREATE_CHILD_SA:
		return "CREATE_CHILD_SA"
	case INFORMATIONAL:
		return "INFORMATIONAL"
	case IKE_SESSION_RESUME:
		return "IKE_SESSION_RESUME"
	case IKE_INTERMEDIATE:
		return "IKE_INTERMEDIATE"
	}
	return "EXCHANGE(" + strconv.Itoa(int(e)) + ")"
}

// Flags are the header flag bits.
type Flags uint8

// Header flags (RFC 7296 §3.1).
const (
	FlagInitiator Flags = 0x08 // I: sent by the original initiator of the IKE SA
	FlagVersion   Flags = 0x10 // V: sender could speak a higher major version
	FlagResponse  Flags = 0x20 // R: message is a response
)

func (f Flags) String() string {
	s := ""
	if f&FlagInitiator != 0 {
		s += "I"
	}
	if f&FlagVersion != 0 {
		s += "V"
	}
	if f&FlagResponse != 0 {
		s += "R"
	}
	if rest := f &^ (FlagInitiator | FlagVersion | FlagResponse); rest != 0 {
		s += "+0x" + strconv.FormatUint(uint64(rest), 16)
	}
	if s == "" {
		return "-"
	}
	return s
}

// PayloadType identifies a payload in the Next Payload chain.
type PayloadType uint8

// Payload types (RFC 7296 §3.2, RFC 7383 §2.5).
const (
	PayloadNone     PayloadType = 0
	PayloadSA       PayloadType = 33
	PayloadKE       PayloadType = 34
	PayloadIDi      PayloadType = 35
	PayloadIDr      PayloadType = 36
	PayloadCERT     PayloadType = 37
	PayloadCERTREQ  PayloadType = 38
	PayloadAUTH     PayloadType = 39
	PayloadNonce    PayloadType = 40
	PayloadNotify   PayloadType = 41
	PayloadDelete   PayloadType = 42
	PayloadVendorID PayloadType = 43
	PayloadTSi      PayloadType = 44
	PayloadTSr      PayloadType = 45
	PayloadSK       PayloadType = 46
	PayloadCP       PayloadType = 47
	PayloadEAP      PayloadType = 48
	PayloadGSPM     PayloadType = 49
	PayloadSKF      PayloadType = 53
)

func (p PayloadType) String() string {
	switch p {
	case PayloadNone:
		return "NONE"
	case PayloadSA:
		return "SA"
	case PayloadKE:
		return "KE"
	case PayloadIDi:
		return "IDi"
	case PayloadIDr:
		return "IDr"
	case PayloadCERT:
		return "CERT"
	case PayloadCERTREQ:
		return "CERTREQ"
	case PayloadAUTH:
		return "AUTH"
	case PayloadNonce:
		return "Ni/Nr"
	case PayloadNotify:
		return "N"
	case PayloadDelete:
		return "D"
	case PayloadVendorID:
		return "V"
	case PayloadTSi:
		return "TSi"
	case PayloadTSr:
		return "TSr"
	case PayloadSK:
		return "SK"
	case PayloadCP:
		return "CP"
	case PayloadEAP:
		return "EAP"
	case PayloadGSPM:
		return "GSPM"
	case PayloadSKF:
		return "SKF"
	}
	return "PAYLOAD(" + strconv.Itoa(int(p)) + ")"
}

// known reports whether the payload type is defined by a specification we
// recognise, so its critical bit does not matter.
func (p PayloadType) known() bool {
	switch p {
	case PayloadSA, PayloadKE, PayloadIDi, PayloadIDr, PayloadCERT, PayloadCERTREQ,
		PayloadAUTH, PayloadNonce, PayloadNotify, PayloadDelete, PayloadVendorID,
		PayloadTSi, PayloadTSr, PayloadSK, PayloadCP, PayloadEAP, PayloadGSPM, PayloadSKF:
		return true
	}
	return false
}

// ProtocolID names the protocol of a proposal, notification or delete.
type ProtocolID uint8

// Protocol IDs (RFC 7296 §3.3.1).
const (
	ProtoNone ProtocolID = 0
	ProtoIKE  ProtocolID = 1
	ProtoAH   ProtocolID = 2
	ProtoESP  ProtocolID = 3
)

func (p ProtocolID) String() string {
	switch p {
	case ProtoNone:
		return "NONE"
	case ProtoIKE:
		return "IKE"
	case ProtoAH:
		return "AH"
	case ProtoESP:
		return "ESP"
	}
	return "PROTO(" + strconv.Itoa(int(p)) + ")"
}

// TransformType is the kind of algorithm a transform selects.
type TransformType uint8

// Transform types (RFC 7296 §3.3.2).
const (
	TransformENCR  TransformType = 1
	TransformPRF   TransformType = 2
	TransformINTEG TransformType = 3
	TransformDH    TransformType = 4
	TransformESN   TransformType = 5
)

func (t TransformType) String() string {
	switch t {
	case TransformENCR:
		return "ENCR"
	case TransformPRF:
		return "PRF"
	case TransformINTEG:
		return "INTEG"
	case TransformDH:
		return "DH"
	case TransformESN:
		return "ESN"
	}
	return "TRANSFORM(" + strconv.Itoa(int(t)) + ")"
}

// TransformIDString names a transform ID of the given type.
func TransformIDString(t TransformType, id uint16) string {
	switch t {
	case TransformENCR:
		return EncrID(id).String()
	case TransformPRF:
		return PRFID(id).String()
	case TransformINTEG:
		return IntegID(id).String()
	case TransformDH:
		return DHGroup(id).String()
	case TransformESN:
		return ESN(id).String()
	}
	return strconv.Itoa(int(id))
}

// EncrID is a Transform Type 1 (encryption) ID.
type EncrID uint16

// Encryption algorithms (RFC 7296 §3.3.2, RFC 5282, RFC 7634).
const (
	ENCR_AES_CBC           EncrID = 12
	ENCR_AES_CTR           EncrID = 13
	ENCR_AES_GCM_8         EncrID = 18
	ENCR_AES_GCM_12        EncrID = 19
	ENCR_AES_GCM_16        EncrID = 20
	ENCR_CHACHA20_POLY1305 EncrID = 28
)

func (e EncrID) String() string {
	switch e {
	case ENCR_AES_CBC:
		return "AES_CBC"
	case ENCR_AES_CTR:
		return "AES_CTR"
	case ENCR_AES_GCM_8:
		return "AES_GCM_8"
	case ENCR_AES_GCM_12:
		return "AES_GCM_12"
	case ENCR_AES_GCM_16:
		return "AES_GCM_16"
	case ENCR_CHACHA20_POLY1305:
		return "CHACHA20_POLY1305"
	}
	return "ENCR(" + strconv.Itoa(int(e)) + ")"
}

// PRFID is a Transform Type 2 (pseudorandom function) ID.
type PRFID uint16

// Pseudorandom functions (RFC 7296 §3.3.2, RFC 4868).
const (
	PRF_HMAC_SHA1     PRFID = 2
	PRF_HMAC_SHA2_256 PRFID = 5
	PRF_HMAC_SHA2_384 PRFID = 6
	PRF_HMAC_SHA2_512 PRFID = 7
)

func (p PRFID) String() string {
	switch p {
	case PRF_HMAC_SHA1:
		return "PRF_HMAC_SHA1"
	case PRF_HMAC_SHA2_256:
		return "PRF_HMAC_SHA2_256"
	case PRF_HMAC_SHA2_384:
		return "PRF_HMAC_SHA2_384"
	case PRF_HMAC_SHA2_512:
		return "PRF_HMAC_SHA2_512"
	}
	return "PRF(" + strconv.Itoa(int(p)) + ")"
}

// IntegID is a Transform Type 3 (integrity) ID.
type IntegID uint16

// Integrity algorithms (RFC 7296 §3.3.2, RFC 4868). AEAD suites use NONE or
// omit the transform.
const (
	AUTH_NONE              IntegID = 0
	AUTH_HMAC_SHA1_96      IntegID = 2
	AUTH_HMAC_SHA2_256_128 IntegID = 12
	AUTH_HMAC_SHA2_384_192 IntegID = 13
	AUTH_HMAC_SHA2_512_256 IntegID = 14
)

func (i IntegID) String() string {
	switch i {
	case AUTH_NONE:
		return "NONE"
	case AUTH_HMAC_SHA1_96:
		return "HMAC_SHA1_96"
	case AUTH_HMAC_SHA2_256_128:
		return "HMAC_SHA2_256_128"
	case AUTH_HMAC_SHA2_384_192:
		return "HMAC_SHA2_384_192"
	case AUTH_HMAC_SHA2_512_256:
		return "HMAC_SHA2_512_256"
	}
	return "INTEG(" + strconv.Itoa(int(i)) + ")"
}

// DHGroup is a Transform Type 4 (Diffie-Hellman group) ID, also carried in
// the KE payload and the INVALID_KE_PAYLOAD notification.
type DHGroup uint16

// Diffie-Hellman groups (RFC 7296 §3.3.2, RFC 3526, RFC 5903, RFC 8031).
const (
	DH_NONE     DHGroup = 0
	MODP_2048   DHGroup = 14
	ECP_256     DHGroup = 19
	ECP_384     DHGroup = 20
	ECP_521     DHGroup = 21
	CURVE_25519 DHGroup = 31
)

func (g DHGroup) String() string {
	switch g {
	case DH_NONE:
		return "NONE"
	case MODP_2048:
		return "MODP_2048"
	case ECP_256:
		return "ECP_256"
	case ECP_384:
		return "ECP_384"
	case ECP_521:
		return "ECP_521"
	case CURVE_25519:
		return "CURVE_25519"
	}
	return "DH(" + strconv.Itoa(int(g)) + ")"
}

// ESN is a Transform Type 5 (extended sequence numbers) ID.
type ESN uint16

// Extended sequence numbers (RFC 7296 §3.3.2).
const (
	ESNOff ESN = 0
	ESNOn  ESN = 1
)

func (e ESN) String() string {
	switch e {
	case ESNOff:
		return "NO_ESN"
	case ESNOn:
		return "ESN"
	}
	return "ESN(" + strconv.Itoa(int(e)) + ")"
}

// AttributeType is a transform attribute type.
type AttributeType uint16

// Transform attributes (RFC 7296 §3.3.5).
const (
	AttrKeyLength AttributeType = 14 // TV format, key length in bits
)

func (a AttributeType) String() string {
	if a == AttrKeyLength {
		return "KEY_LENGTH"
	}
	return "ATTR(" + strconv.Itoa(int(a)) + ")"
}

// IDType is the type of an identification payload.
type IDType uint8

// Identification types (RFC 7296 §3.5).
const (
	ID_IPV4_ADDR   IDType = 1
	ID_FQDN        IDType = 2
	ID_RFC822_ADDR IDType = 3
	ID_IPV6_ADDR   IDType = 5
	ID_DER_ASN1_DN IDType = 9
	ID_DER_ASN1_GN IDType = 10
	ID_KEY_ID      IDType = 11
)

func (t IDType) String() string {
	switch t {
	case ID_IPV4_ADDR:
		return "ID_IPV4_ADDR"
	case ID_FQDN:
		return "ID_FQDN"
	case ID_RFC822_ADDR:
		return "ID_RFC822_ADDR"
	case ID_IPV6_ADDR:
		return "ID_IPV6_ADDR"
	case ID_DER_ASN1_DN:
		return "ID_DER_ASN1_DN"
	case ID_DER_ASN1_GN:
		return "ID_DER_ASN1_GN"
	case ID_KEY_ID:
		return "ID_KEY_ID"
	}
	return "ID(" + strconv.Itoa(int(t)) + ")"
}

// CertEncoding is the encoding of a CERT or CERTREQ payload.
type CertEncoding uint8

// Certificate encodings (RFC 7296 §3.6, RFC 7670).
const (
	CertPKCS7             CertEncoding = 1
	CertPGP               CertEncoding = 2
	CertDNSSignedKey      CertEncoding = 3
	CertX509Signature     CertEncoding = 4
	CertKerberos          CertEncoding = 6
	CertCRL               CertEncoding = 7
	CertARL               CertEncoding = 8
	CertSPKI              CertEncoding = 9
	CertX509Attribute     CertEncoding = 10
	CertRawRSAKey         CertEncoding = 11
	CertHashURLX509       CertEncoding = 12
	CertHashURLX509Bundle CertEncoding = 13
	CertRawPublicKey      CertEncoding = 15
)

func (c CertEncoding) String() string {
	switch c {
	case CertPKCS7:
		return "PKCS7"
	case CertPGP:
		return "PGP"
	case CertDNSSignedKey:
		return "DNS_SIGNED_KEY"
	case CertX509Signature:
		return "X509_SIGNATURE"
	case CertKerberos:
		return "KERBEROS"
	case CertCRL:
		return "CRL"
	case CertARL:
		return "ARL"
	case CertSPKI:
		return "SPKI"
	case CertX509Attribute:
		return "X509_ATTRIBUTE"
	case CertRawRSAKey:
		return "RAW_RSA_KEY"
	case CertHashURLX509:
		return "HASH_URL_X509"
	case CertHashURLX509Bundle:
		return "HASH_URL_X509_BUNDLE"
	case CertRawPublicKey:
		return "RAW_PUBLIC_KEY"
	}
	return "CERT_ENCODING(" + strconv.Itoa(int(c)) + ")"
}

// AuthMethod is the method of an AUTH payload.
type AuthMethod uint8

// Authentication methods (RFC 7296 §3.8, RFC 4754, RFC 7427).
const (
	AuthRSASig           AuthMethod = 1  // RSASSA-PKCS1-v1_5 with SHA-1
	AuthPSK              AuthMethod = 2  // shared key message integrity code
	AuthDSS              AuthMethod = 3  // DSS with SHA-1
	AuthECDSAP256        AuthMethod = 9  // ECDSA with SHA-256 on P-256
	AuthECDSAP384        AuthMethod = 10 // ECDSA with SHA-384 on P-384
	AuthECDSAP521        AuthMethod = 11 // ECDSA with SHA-512 on P-521
	AuthNULL             AuthMethod = 13
	AuthDigitalSignature AuthMethod = 14 // RFC 7427
)

func (a AuthMethod) String() string {
	switch a {
	case AuthRSASig:
		return "RSA_SIG"
	case AuthPSK:
		return "PSK"
	case AuthDSS:
		return "DSS"
	case AuthECDSAP256:
		return "ECDSA_SHA256_P256"
	case AuthECDSAP384:
		return "ECDSA_SHA384_P384"
	case AuthECDSAP521:
		return "ECDSA_SHA512_P521"
	case AuthNULL:
		return "NULL"
	case AuthDigitalSignature:
		return "DIGITAL_SIGNATURE"
	}
	return "AUTH(" + strconv.Itoa(int(a)) + ")"
}

// HashAlgorithm is a hash announced in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
type HashAlgorithm uint16

// Hash algorithms for digital signatures (RFC 7427 §7).
const (
	HashSHA1     HashAlgorithm = 1
	HashSHA2_256 HashAlgorithm = 2
	HashSHA2_384 HashAlgorithm = 3
	HashSHA2_512 HashAlgorithm = 4
	HashIdentity HashAlgorithm = 5 // RFC 8420
)

func (h HashAlgorithm) String() string {
	switch h {
	case HashSHA1:
		return "SHA1"
	case HashSHA2_256:
		return "SHA2_256"
	case HashSHA2_384:
		return "SHA2_384"
	case HashSHA2_512:
		return "SHA2_512"
	case HashIdentity:
		return "IDENTITY"
	}
	return "HASH(" + strconv.Itoa(int(h)) + ")"
}

// TSType is the type of a traffic selector.
type TSType uint8

// Traffic selector types (RFC 7296 §3.13.1).
const (
	TS_IPV4_ADDR_RANGE TSType = 7
	TS_IPV6_ADDR_RANGE TSType = 8
)

func (t TSType) String() string {
	switch t {
	case TS_IPV4_ADDR_RANGE:
		return "TS_IPV4_ADDR_RANGE"
	case TS_IPV6_ADDR_RANGE:
		return "TS_IPV6_ADDR_RANGE"
	}
	return "TS(" + strconv.Itoa(int(t)) + ")"
}

// NotifyType is the message type of a Notify payload. Values below 16384
// are errors, values from 16384 on are status notifications.
type NotifyType uint16

// Error notifications (RFC 7296 §3.10.1).
const (
	UNSUPPORTED_CRITICAL_PAYLOAD NotifyType = 1
	INVALID_IKE_SPI              NotifyType = 4
	INVALID_MAJOR_VERSION        NotifyType = 5
	INVALID_SYNTAX               NotifyType = 7
	INVALID_MESSAGE_ID           NotifyType = 9
	INVALID_SPI                  NotifyType = 11
	NO_PROPOSAL_CHOSEN           NotifyType = 14
	INVALID_KE_PAYLOAD           NotifyType = 17
	AUTHENTICATION_FAILED        NotifyType = 24
	SINGLE_PAIR_REQUIRED         NotifyType = 34
	NO_ADDITIONAL_SAS            NotifyType = 35
	INTERNAL_ADDRESS_FAILURE     NotifyType = 36
	FAILED_CP_REQUIRED           NotifyType = 37
	TS_UNACCEPTABLE              NotifyType = 38
	INVALID_SELECTORS            NotifyType = 39
	TEMPORARY_FAILURE            NotifyType = 43
	CHILD_SA_NOT_FOUND           NotifyType = 44
)

// Status notifications (RFC 7296 §3.10.1, RFC 7383, RFC 7427).
const (
	INITIAL_CONTACT                 NotifyType = 16384
	SET_WINDOW_SIZE                 NotifyType = 16385
	ADDITIONAL_TS_POSSIBLE          NotifyType = 16386
	IPCOMP_SUPPORTED                NotifyType = 16387
	NAT_DETECTION_SOURCE_IP         NotifyType = 16388
	NAT_DETECTION_DESTINATION_IP    NotifyType = 16389
	COOKIE                          NotifyType = 16390
	USE_TRANSPORT_MODE              NotifyType = 16391
	HTTP_CERT_LOOKUP_SUPPORTED      NotifyType = 16392
	REKEY_SA                        NotifyType = 16393
	ESP_TFC_PADDING_NOT_SUPPORTED   NotifyType = 16394
	NON_FIRST_FRAGMENTS_ALSO        NotifyType = 16395
	MOBIKE_SUPPORTED                NotifyType = 16396
	MULTIPLE_AUTH_SUPPORTED         NotifyType = 16404
	REDIRECT_SUPPORTED              NotifyType = 16406
	IKEV2_FRAGMENTATION_SUPPORTED   NotifyType = 16430
	SIGNATURE_HASH_ALGORITHMS       NotifyType = 16431
	CHILDLESS_IKEV2_SUPPORTED       NotifyType = 16418
	INTERMEDIATE_EXCHANGE_SUPPORTED NotifyType = 16438
)

// IsError reports whether n is an error notification (RFC 7296 §3.10.1).
func (n NotifyType) IsError() bool { return n < 16384 }

func (n NotifyType) String() string {
	switch n {
	case UNSUPPORTED_CRITICAL_PAYLOAD:
		return "UNSUPPORTED_CRITICAL_PAYLOAD"
	case INVALID_IKE_SPI:
		return "INVALID_IKE_SPI"
	case INVALID_MAJOR_VERSION:
		return "INVALID_MAJOR_VERSION"
	case INVALID_SYNTAX:
		return "INVALID_SYNTAX"
	case INVALID_MESSAGE_ID:
		return "INVALID_MESSAGE_ID"
	case INVALID_SPI:
		return "INVALID_SPI"
	case NO_PROPOSAL_CHOSEN:
		return "NO_PROPOSAL_CHOSEN"
	case INVALID_KE_PAYLOAD:
		return "INVALID_KE_PAYLOAD"
	case AUTHENTICATION_FAILED:
		return "AUTHENTICATION_FAILED"
	case SINGLE_PAIR_REQUIRED:
		return "SINGLE_PAIR_REQUIRED"
	case NO_ADDITIONAL_SAS:
		return "NO_ADDITIONAL_SAS"
	case INTERNAL_ADDRESS_FAILURE:
		return "INTERNAL_ADDRESS_FAILURE"
	case FAILED_CP_REQUIRED:
		return "FAILED_CP_REQUIRED"
	case TS_UNACCEPTABLE:
		return "TS_UNACCEPTABLE"
	case INVALID_SELECTORS:
		return "INVALID_SELECTORS"
	case TEMPORARY_FAILURE:
		return "TEMPORARY_FAILURE"
	case CHILD_SA_NOT_FOUND:
		return "CHILD_SA_NOT_FOUND"
	case INITIAL_CONTACT:
		return "INITIAL_CONTACT"
	case SET_WINDOW_SIZE:
		return "SET_WINDOW_SIZE"
	case ADDITIONAL_TS_POSSIBLE:
		return "ADDITIONAL_TS_POSSIBLE"
	case IPCOMP_SUPPORTED:
		return "IPCOMP_SUPPORTED"
	case NAT_DETECTION_SOURCE_IP:
		return "NAT_DETECTION_SOURCE_IP"
	case NAT_DETECTION_DESTINATION_IP:
		return "NAT_DETECTION_DESTINATION_IP"
	case COOKIE:
		return "COOKIE"
	case USE_TRANSPORT_MODE:
		return "USE_TRANSPORT_MODE"
	case HTTP_CERT_LOOKUP_SUPPORTED:
		return "HTTP_CERT_LOOKUP_SUPPORTED"
	case REKEY_SA:
		return "REKEY_SA"
	case ESP_TFC_PADDING_NOT_SUPPORTED:
		return "ESP_TFC_PADDING_NOT_SUPPORTED"
	case NON_FIRST_FRAGMENTS_ALSO:
		return "NON_FIRST_FRAGMENTS_ALSO"
	case MOBIKE_SUPPORTED:
		return "MOBIKE_SUPPORTED"
	case MULTIPLE_AUTH_SUPPORTED:
		return "MULTIPLE_AUTH_SUPPORTED"
	case REDIRECT_SUPPORTED:
		return "REDIRECT_SUPPORTED"
	case IKEV2_FRAGMENTATION_SUPPORTED:
		return "IKEV2_FRAGMENTATION_SUPPORTED"
	case SIGNATURE_HASH_ALGORITHMS:
		return "SIGNATURE_HASH_ALGORITHMS"
	case CHILDLESS_IKEV2_SUPPORTED:
		return "CHILDLESS_IKEV2_SUPPORTED"
	case INTERMEDIATE_EXCHANGE_SUPPORTED:
		return "INTERMEDIATE_EXCHANGE_SUPPORTED"
	}
	return "NOTIFY(" + strconv.Itoa(int(n)) + ")"
}
