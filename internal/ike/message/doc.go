// Package message encodes and decodes IKEv2 messages (RFC 7296) including
// the SK payload with AEAD ciphers (RFC 5282) and message fragmentation
// (RFC 7383). It knows the wire format only: no state, no keys, no policy.
//
// # Receiving
//
//	b, ok := message.StripNonESPMarker(datagram) // on port 4500 only
//	h, err := message.ParseHeader(b)             // cheap dispatch on SPIs / message ID
//	m, err := message.Decode(b)                  // full parse; b may be reused afterwards
//
// Decode errors wrap ErrInvalidSyntax, or are a *VersionError or a
// *CriticalPayloadError; NotifyFor(err) gives the notification to answer
// with (UNSUPPORTED_CRITICAL_PAYLOAD carries the payload type). Unknown
// payloads without the critical bit, and CP/EAP, decode as *Opaque and
// should be ignored.
//
// If the last payload is *Encrypted, the rest of the message is inside it:
//
//	inner, err := m.Decrypt(opener) // opener: the peer's SK_e (suite.AEAD)
//
// or, without allocating, stream, err := m.Open(opener, buf) followed by
// DecodePayloads(sk.NextPayload, stream). If it is *EncryptedFragment:
//
//	f, err := m.OpenFragment(opener)          // authenticate each fragment first
//	next, stream, done, err := r.Add(now, f)  // r: one Reassembler per IKE SA
//	if done { inner, err = message.DecodePayloads(next, stream) }
//
// and call r.Expire(now.Add(-timeout)) from the SA's timer.
//
// # Sending
//
// Build a Message with a Header and typed payloads (*SA, *KE, *Nonce, *ID,
// *Cert, *CertReq, *Auth, *Notify, *Delete, *VendorID, *TrafficSelectors,
// *Opaque) and call
//
//	b, err := m.Encode(buf[:0])                 // IKE_SA_INIT: clear text
//	b, err := m.EncodeSK(buf[:0], inner, sealer) // everything later
//	frags, err := m.EncodeFragments(inner, sealer, 1280-48) // if the peer sent
//	                                           // IKEV2_FRAGMENTATION_SUPPORTED and b is too big
//
// Encode and EncodeSK fill in m.NextPayload and m.Length and do not allocate
// when buf has room. The Sealer/Opener interfaces are implemented by
// suite.AEAD. ID.Body() gives IDx' for AUTH (suite.SignedOctets).
//
// Round trip: Decode(Encode(m)) equals m (Header and Payloads) for every
// valid m; FuzzDecode checks that every accepted input re-encodes stably.
// The codec checks structure only: value rules such as nonce length,
// acceptable transforms or which payloads an exchange needs belong to the
// exchange logic.
//
// A Message is not safe for concurrent use; a Reassembler neither.
package message
